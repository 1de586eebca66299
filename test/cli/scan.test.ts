import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Report } from '../../src/domain/scan.js';
import { page, startFixtureServer, type FixtureServer } from '../support/fixture-server.js';
import { BIN, cliEnv, ROOT, runCli, withSlot, type CliRun } from './run-cli.js';

/** A 1x1 transparent GIF, inline so no page depends on a second request. */
const GIF = 'data:image/gif;base64,R0lGODlhAQABAAAAACH5BAEKAAEALAAAAAABAAEAAAICTAEAOw==';
// Big enough that target-size stays quiet: the empty name is the one thing wrong with it.
const BUTTON = '<button id="go" style="width:48px;height:48px"></button>';
// Elements whose fingerprint must survive a page change carry ids, so axe's selector for them
// does not shift when their siblings come and go.
const CHANGING_BEFORE = page(`<img id="logo" src="${GIF}">${BUTTON}`);
// Image alt fixed, button unchanged (persisting), unlabelled input added (new).
const CHANGING_AFTER = page(`<img id="logo" src="${GIF}" alt="Logo">${BUTTON}<input id="email" type="text">`);

let server: FixtureServer;
let tmp: string;

beforeAll(async () => {
  server = await startFixtureServer();
  server
    .html('/clean.html', page('<h1>Clean</h1><p>Nothing to find here.</p>'))
    // image-alt, rated critical.
    .html('/violation.html', page(`<h1>Violation</h1><img id="logo" src="${GIF}">`))
    // aria-deprecated-role is the only finding, and axe rates it minor.
    .html('/minor.html', page('<h1>Minor</h1><div id="dir" role="directory"><p>Index</p></div>'))
    .html('/missing.html', page('<h1>Not found</h1>'), { status: 404 })
    // An unnamed button shown only on narrow screens (a phone menu): found at 375 px, not at the default width.
    .html('/responsive.html', page(`<style>#menu{display:none}@media (max-width:600px){#menu{display:block}}</style><h1>Responsive</h1>${BUTTON.replace('id="go"', 'id="menu"')}`))
    .body(
      '/sitemap.xml',
      'application/xml',
      `<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>${server.url('/clean.html')}</loc></url><url><loc>${server.url('/violation.html')}</loc></url></urlset>`,
    )
    // The first request gets the old version, every later one the new.
    // Answers only with the preview token; loads one image from its own origin and one from another (localhost).
    .route('/private.html', (req, res) => {
      if (req.headers['x-preview-token'] !== 's3cret') return void res.writeHead(401, { 'content-type': 'text/html' }).end(page('<h1>Sign in</h1>'));
      res
        .writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' })
        .end(page(`<h1>Preview</h1><img src="/own.gif?n=${Math.random()}" alt="own"><img src="${server.url('/third.gif', 'localhost')}?n=${Math.random()}" alt="third">`));
    })
    .route('/own.gif', (_req, res) => void res.writeHead(200, { 'content-type': 'image/gif', 'cache-control': 'no-store' }).end(Buffer.from(GIF.split(',')[1]!, 'base64')))
    .route('/third.gif', (_req, res) => void res.writeHead(200, { 'content-type': 'image/gif', 'cache-control': 'no-store' }).end(Buffer.from(GIF.split(',')[1]!, 'base64')))
    // A page where `wcagai dlq --url` expects the admin API: something else answers there.
    .html('/admin/dlq/stats', page('<h1>Not the API</h1>'))
    .route('/changing.html', (_req, res) => {
      const body = server.requestsTo('/changing.html').length <= 1 ? CHANGING_BEFORE : CHANGING_AFTER;
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(body);
    });
  tmp = await mkdtemp(join(tmpdir(), 'wcagai-cli-'));
});

afterAll(async () => {
  await server?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/** A usage or tool error as the operator should see it: one line, no stack, nothing on stdout. */
function expectOneLineError(run: CliRun, pattern?: RegExp): void {
  expect(run.code, run.stderr).toBe(1);
  expect(run.stdout).toBe('');
  const lines = run.stderr.trimEnd().split('\n');
  expect(lines, run.stderr).toHaveLength(1);
  expect(run.stderr).not.toMatch(/^\s+at /m);
  if (pattern) expect(lines[0]).toMatch(pattern);
}

function parseReport(run: CliRun): Report {
  return JSON.parse(run.stdout) as Report;
}

describe('wcagai without a browser', () => {
  it('--help lists scan, exits 0 and answers within a second', async () => {
    // The child reports its own CPU time at exit, so a loaded machine can still be judged fairly.
    const cpuFile = join(tmp, 'help-cpu.txt');
    const report = `import { writeFileSync } from 'node:fs'; process.on('exit', () => { const u = process.cpuUsage(); writeFileSync(process.env.WCAGAI_CPU_FILE, String((u.user + u.system) / 1000)); });`;
    const runs: CliRun[] = [];
    for (let i = 0; i < 3; i++) {
      runs.push(await runCli(['--help'], { nodeArgs: ['--import', `data:text/javascript,${encodeURIComponent(report)}`], env: { WCAGAI_CPU_FILE: cpuFile } }));
    }
    for (const run of runs) {
      expect(run.code).toBe(0);
      expect(run.stdout).toMatch(/^\s+scan \[options\] \[urls\.\.\.\]/m);
    }
    const fastest = Math.min(...runs.map((r) => r.ms));
    // On an oversubscribed machine (more runnable work than CPUs) wall time measures the
    // neighbours; the CLI's own CPU time is what it costs there.
    if (loadavg()[0]! <= availableParallelism()) expect(fastest).toBeLessThan(1_000);
    else expect(Number(await readFile(cpuFile, 'utf8')), `wall ${Math.round(fastest)} ms under load ${loadavg()[0]}`).toBeLessThan(1_000);
  });

  it('--help loads no browser, queue, server, UI or schema module', async () => {
    // A module.register() load hook (off-thread, so it needs a data: URL and the env) logs
    // every ESM module the process loads; puppeteer, zod and the command modules are all ESM.
    const trace = join(tmp, 'modules.txt');
    const hooks = `import { appendFileSync } from 'node:fs';
      export async function load(url, context, next) { appendFileSync(process.env.WCAGAI_MODULE_TRACE, url + '\\n'); return next(url, context); }`;
    const register = `import { register } from 'node:module'; register('data:text/javascript,' + encodeURIComponent(process.env.WCAGAI_HOOKS));`;
    const run = await runCli(['--help'], {
      nodeArgs: ['--import', `data:text/javascript,${encodeURIComponent(register)}`],
      env: { WCAGAI_HOOKS: hooks, WCAGAI_MODULE_TRACE: trace },
    });
    expect(run.code).toBe(0);
    const loaded = (await readFile(trace, 'utf8')).trim().split('\n');
    // The trace works: it saw the CLI itself.
    expect(loaded).toContain(pathToFileURL(join(ROOT, 'dist/cli/main.js')).href);
    const heavy = /\/node_modules\/(puppeteer-core|@puppeteer|zod|axe-core|ioredis|bullmq|fastify|pino|react|ink)\/|\/dist\/(commands|scanner|app|queue|http)\//;
    // One entry per offending package or folder, not one per file (zod alone is ~95).
    expect([...new Set(loaded.map((url) => heavy.exec(url)?.[0]).filter(Boolean))]).toEqual([]);
  });

  it('dist/cli/main.js reaches command modules only through dynamic import()', async () => {
    const source = await readFile(join(ROOT, 'dist/cli/main.js'), 'utf8');
    const staticImports = [...source.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+['"]([^'"]+)['"]/gm)].map((m) => m[1]);
    expect(staticImports.filter((s) => /puppeteer|ioredis|bullmq|react|ink|fastify|zod|commands\//.test(s ?? ''))).toEqual([]);
    expect(source).toMatch(/import\(['"]\.\.\/commands\/scan\.js['"]\)/);
  });

  it.each([
    ['a value that is not a URL', ['scan', 'notaurl'], /not a URL/],
    ['an unknown flag', ['scan', '--bogus', 'URL'], /unknown option '--bogus'/],
    ['an unreadable --urls-file', ['scan', '--urls-file', '/nonexistent/urls.txt'], /cannot read URLs file/],
    ['a bad --level', ['scan', '--level', 'X', 'URL'], /--level/],
    ['an unknown --rules id', ['scan', '--rules', 'no-such-rule', 'URL'], /no-such-rule/],
    ['a --header without a colon', ['scan', '--header', 'X-Token s3cret', 'URL'], /^wcagai: --header expects "Name: value", got "X-Token s3cret"$/],
    ['a --header value with a line break', ['scan', '--header', 'X-Token: a\r\nX-Other: b', 'URL'], /^wcagai: --header X-Token: the value may hold only printable characters/],
    ['a --header the browser sets', ['scan', '--header', 'Host: example.com', 'URL'], /^wcagai: --header Host: set by the browser, cannot be given$/],
    ['a --viewport that is not WIDTHxHEIGHT', ['scan', '--viewport', '375', 'URL'], /^wcagai: --viewport expects WIDTHxHEIGHT with each from 200 to 7680, e\.g\. 375x667, got "375"$/],
    ['a --viewport too small', ['scan', '--viewport', '100x667', 'URL'], /^wcagai: --viewport expects WIDTHxHEIGHT/],
    // Refused before the scan, not after it with the report lost.
    ['an --output in a directory that does not exist', ['scan', '--output', '/nonexistent-dir/report.json', 'URL'], /^wcagai: --output \/nonexistent-dir\/report\.json: no directory \/nonexistent-dir to write it in$/],
    ['an --output that is a directory', ['scan', '--output', '/tmp', 'URL'], /^wcagai: --output \/tmp: is a directory$/],
    // `-o "$REPORT"` with the variable unset: the report went to stdout, exit 0, the CI artifact missing.
    ['an empty --output', ['scan', '--output', '', 'URL'], /^wcagai: --output expects a file name, got ""$/],
    // A second value replaced the first in silence: the CI job uploaded a report in the wrong format.
    ['--format given twice', ['scan', '--format', 'json', '--format', 'sarif', 'URL'], /^wcagai: --format given twice: give it once$/],
    ['--format with several --output files', ['scan', '--format', 'json', '-o', '/tmp/wcagai-a.json', '-o', '/tmp/wcagai-b.sarif', 'URL'], /^wcagai: --format applies to one --output: with several, each file takes the format its name asks for/],
    ['one --output file given twice', ['scan', '-o', '/tmp/wcagai-a.json', '-o', '/tmp/../tmp/wcagai-a.json', 'URL'], /^wcagai: --output \/tmp\/\.\.\/tmp\/wcagai-a\.json given twice$/],
    ['an empty --baseline', ['scan', '--baseline', '', 'URL'], /^wcagai: --baseline expects a file name, got ""$/],
    ['an empty --exclude', ['scan', '--exclude', ' ', 'URL'], /^wcagai: --exclude expects a value, got " "$/],
    // An empty --rules ran every rule; an empty leak --url measured the fixture site instead.
    ['an empty --rules', ['scan', '--rules', '', 'URL'], /^wcagai: --rules expects axe rule ids, got ""$/],
    // Otherwise the page is checked by nothing at all, and the gate passes.
    ['a --disable-rules that skips every rule --rules names', ['scan', '--rules', 'image-alt', '--disable-rules', 'label,image-alt', 'URL'], /^wcagai: disableRules: skips every rule that rules names \(image-alt\): nothing would be checked$/],
    ['a --disable-rules of commas only', ['scan', '--disable-rules', ' , ', 'URL'], /^wcagai: --disable-rules expects axe rule ids, got " , "$/],
    ['an empty leak --url', ['leak', '--cycles', '1', '--url', ''], /^wcagai: --url expects page URLs, got ""$/],
    // resolve() drops the slash: without a check of its own this passed, and the scan ran before the write failed.
    ['an --output naming a directory to be', ['scan', '--output', 'new-dir/', 'URL'], /^wcagai: --output new-dir\/: names a directory, not a file$/],
    ['a leak --report in a directory that does not exist', ['leak', '--cycles', '1', '--report', '/nonexistent-dir/leak.html'], /^wcagai: --report \/nonexistent-dir\/leak\.html: no directory/],
    ['a stress --out in a directory that does not exist', ['stress', '--amount', '1', '--out', '/nonexistent-dir/stress.json'], /^wcagai: --out \/nonexistent-dir\/stress\.json: no directory/],
    // Flags that would be ignored in silence.
    ['--limit without --sitemap', ['scan', '--limit', '2', 'URL'], /^wcagai: --limit applies to --sitemap only$/],
    // Past 2^31 - 1 ms Node fires the timer at once: every page failed "did not finish within 99999999999 ms".
    ['a --timeout longer than a timer can wait', ['scan', '--timeout', '99999999999', 'URL'], /^wcagai: --timeout must be at most 2073600000 ms \(24 days: a timer cannot wait longer\), got "99999999999"$/],
    ['a stress --token for the self-contained stack', ['stress', '--amount', '1', '--token', 'some-token'], /^wcagai: --token applies to a target URL/],
    ['a dlq --limit out of range', ['dlq', 'list', '--limit', '0'], /^wcagai: --limit must be an integer from 1 to 1000, got "0"$/],
    ['a prospect --limit out of range', ['prospect', '--limit', '1001'], /^wcagai: --limit must be an integer from 1 to 1000, got "1001"$/],
    ['a dlq --code in lower case', ['dlq', 'list', '--code', 'http_server_error'], /^wcagai: --code expects an error code such as HTTP_SERVER_ERROR, got "http_server_error"$/],
    ['a dlq --url that is not a wcagai server', ['dlq', 'stats', '--url', 'ORIGIN', '--token', 'some-admin-token-0123'], /^wcagai: http:\/\/127\.0\.0\.1:\d+ is not a wcagai server: GET \/admin\/dlq\/stats answered 200 without a JSON body$/],
  ])('exits 1 with one line on stderr for %s', async (_name, args, pattern) => {
    const run = await runCli(args.map((a) => (a === 'URL' ? server.url('/clean.html') : a === 'ORIGIN' ? server.url('/').replace(/\/$/, '') : a)));
    expectOneLineError(run, pattern);
    expect(server.requestsTo('/clean.html')).toEqual([]);
  });

  it('reads BROWSER_CONTEXTS from .env, as the flag\'s environment default', async () => {
    const dir = await mkdtemp(join(tmp, 'dotenv-contexts-'));
    await writeFile(join(dir, '.env'), 'BROWSER_CONTEXTS=one-per-page\n');
    const run = await runCli(['scan', '--format', 'json', server.url('/clean.html?contexts=dotenv')], { cwd: dir });
    expectOneLineError(run, /^wcagai: option '--browser-contexts <mode>' value 'one-per-page' from env 'BROWSER_CONTEXTS' is invalid\. Allowed choices are shared, per-slot\.$/);
    expect(server.requestsTo('/clean.html').filter((r) => r.url.includes('contexts=dotenv'))).toEqual([]);
  });

  it('names the three ways to get a browser when none is found', async () => {
    const run = await runCli(['scan', server.url('/clean.html')], { env: { CHROMIUM_PATH: '/nonexistent', PUPPETEER_EXECUTABLE_PATH: undefined } });
    expectOneLineError(run, /CHROMIUM_PATH/);
    expect(run.stderr).toMatch(/PUPPETEER_EXECUTABLE_PATH/);
    expect(run.stderr).toMatch(/apt-get install -y chromium/);
    expect(run.stderr).toMatch(/@puppeteer\/browsers install/);
  });
});

// Each test launches its own Chromium (runCli caps how many at once), so they run side by side.
// The generous timeout is for a shared, loaded machine; alone the file takes well under a minute.
describe.concurrent('wcagai scan against loopback pages', { timeout: 180_000 }, () => {
  it('exits 0 on a clean page', async ({ expect }) => {
    const run = await runCli(['scan', '--format', 'json', server.url('/clean.html')]);
    expect(run.code, run.stderr).toBe(0);
    expect(parseReport(run).summary.violations).toBe(0);
  });

  it('exits 2 on a violation and prints the documented JSON report', async ({ expect }) => {
    const run = await runCli(['scan', '--format', 'json', server.url('/violation.html')]);
    expect(run.code, run.stderr).toBe(2);
    const report = parseReport(run);
    const str = expect.any(String);
    const num = expect.any(Number);
    expect(report).toMatchObject({
      tool: { name: 'wcagai', version: str },
      axeVersion: expect.stringMatching(/^4\.11\./),
      startedAt: str,
      finishedAt: str,
      options: { wcagLevel: 'AA', wcagVersion: '2.2', failOn: 'minor' },
      summary: { pages: 1, pagesFailed: 0, violations: 1, nodes: 1, byImpact: { minor: 0, moderate: 0, serious: 0, critical: 1 } },
    });
    expect(Date.parse(report.finishedAt)).toBeGreaterThanOrEqual(Date.parse(report.startedAt));
    expect(report.pages).toHaveLength(1);
    const page = report.pages[0]!;
    expect(page).toMatchObject({
      url: server.url('/violation.html'),
      finalUrl: server.url('/violation.html'),
      status: 'ok',
      httpStatus: 200,
      timings: { navigationMs: num, settleMs: num, axeMs: num, totalMs: num },
      rules: { tags: expect.arrayContaining(['wcag2a', 'wcag2aa', 'wcag22aa']), ran: expect.arrayContaining(['image-alt']) },
    });
    expect(page.violations).toEqual([
      expect.objectContaining({
        id: 'image-alt',
        impact: 'critical',
        wcag: ['1.1.1'],
        tags: expect.arrayContaining(['wcag111']),
        help: str,
        helpUrl: expect.stringMatching(/^https:\/\//),
        nodes: [{ target: ['#logo'], html: expect.stringContaining('<img'), failureSummary: str, fingerprint: expect.stringMatching(/^[0-9a-f]{24}$/) }],
      }),
    ]);
  });

  it('--viewport scans at that window size: a control shown only on narrow screens is checked', async ({ expect }) => {
    const wide = await runCli(['scan', '--format', 'json', server.url('/responsive.html')]);
    expect(wide.code, wide.stderr).toBe(0);
    const narrow = await runCli(['scan', '--format', 'json', '--viewport', '375x667', server.url('/responsive.html')]);
    expect(narrow.code, narrow.stderr).toBe(2);
    const report = parseReport(narrow);
    expect(report.options.viewport).toEqual({ width: 375, height: 667 });
    const [result] = report.pages;
    expect(result!.violations.map((v) => v.id)).toEqual(['button-name']);
    expect(result!.violations[0]!.nodes[0]!.target).toEqual(['#menu']);
  });

  it('--exclude keeps a selector whole, commas and all: one selector list, repeatable', async ({ expect }) => {
    // Two images without alt; `:is(#a, #b)` is one selector that holds a comma.
    server.html('/two-images.html', page(`<h1>Two</h1><img id="a" src="${GIF}"><img id="b" src="${GIF}">`));
    const both = await runCli(['scan', '--format', 'json', '--exclude', ':is(#a, #b)', server.url('/two-images.html')]);
    expect(both.code, both.stderr).toBe(0);
    expect(parseReport(both).options.exclude).toEqual([':is(#a, #b)']);
    const one = await runCli(['scan', '--format', 'json', '--exclude', '#a', '--exclude', '[id="x,y"]', server.url('/two-images.html')]);
    expect(one.code, one.stderr).toBe(2);
    expect(parseReport(one).options.exclude).toEqual(['#a', '[id="x,y"]']);
    expect(parseReport(one).pages[0]!.violations.flatMap((v) => v.nodes.map((n) => n.target))).toEqual([['#b']]);
  });

  it('--disable-rules skips a rule that --rules also names', async ({ expect }) => {
    server.html('/image-and-button.html', page(`<h1>Two rules</h1><img id="logo" src="${GIF}">${BUTTON}`));
    const run = await runCli(['scan', '--format', 'json', '--rules', 'image-alt,button-name', '--disable-rules', 'image-alt', server.url('/image-and-button.html')]);
    expect(run.code, run.stderr).toBe(2);
    const [result] = parseReport(run).pages;
    expect(result!.rules.ran).toEqual(['button-name']);
    expect(result!.violations.map((v) => v.id)).toEqual(['button-name']);
  });

  it('--fail-on critical exits 0 on a page with only a minor violation', async ({ expect }) => {
    const run = await runCli(['scan', '--format', 'json', '--fail-on', 'critical', server.url('/minor.html')]);
    expect(run.code, run.stderr).toBe(0);
    const violations = parseReport(run).pages[0]!.violations;
    expect(violations.length).toBeGreaterThan(0);
    expect(violations.every((v) => v.impact === 'minor' || v.impact === 'moderate')).toBe(true);
  });

  it('keeps its exit code when the reader of its output is gone (`wcagai scan … | head` under pipefail)', async ({ expect }) => {
    // The pipe's reading end is closed before the report is written: the write fails with EPIPE.
    const { code, stderr } = await withSlot(async () => {
      const child = spawn(process.execPath, [BIN, 'scan', server.url('/violation.html')], { cwd: ROOT, env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout!.destroy();
      let text = '';
      child.stderr!.on('data', (c: Buffer) => (text += c.toString('utf8')));
      const [exit] = (await once(child, 'exit')) as [number | null];
      return { code: exit, stderr: text };
    });
    expect(code, stderr).toBe(2);
    expect(stderr).not.toMatch(/EPIPE|Error:/);
  });

  it('exits 1, not 2, when a page could not be scanned beside one that fails the gate', async ({ expect }) => {
    const run = await runCli(['scan', '--format', 'json', server.url('/missing.html'), server.url('/violation.html')]);
    expect(run.code, run.stderr).toBe(1);
    expect(parseReport(run).summary).toMatchObject({ pagesFailed: 1, violations: expect.any(Number) });
    expect(parseReport(run).summary.violations).toBeGreaterThan(0);
  });

  it('reads .env like every command, and holds a sitemap to the target policy before fetching it', async ({ expect }) => {
    const dir = await mkdtemp(join(tmp, 'dotenv-'));
    await writeFile(join(dir, '.env'), 'ALLOW_PRIVATE_TARGETS=false\n');
    const viaDotEnv = await runCli(['scan', '--format', 'json', server.url('/clean.html')], { cwd: dir });
    expect(viaDotEnv.code, viaDotEnv.stderr).toBe(1);
    expect(parseReport(viaDotEnv).pages[0]!.error?.code).toBe('BLOCKED_TARGET');
    const before = server.requestsTo('/sitemap.xml').length;
    const sitemap = await runCli(['scan', '--no-allow-private', '--sitemap', server.url('/sitemap.xml')]);
    expectOneLineError(sitemap, /BLOCKED_TARGET|refusing to scan 127\.0\.0\.1/);
    expect(server.requestsTo('/sitemap.xml').length).toBe(before);
  });

  it('--no-allow-private wins over ALLOW_PRIVATE_TARGETS=true from the environment and from .env', async ({ expect }) => {
    const dir = await mkdtemp(join(tmp, 'dotenv-allow-'));
    await writeFile(join(dir, '.env'), 'ALLOW_PRIVATE_TARGETS=true\n');
    const url = server.url('/clean.html?policy=flag');
    for (const options of [{ env: { ALLOW_PRIVATE_TARGETS: 'true' } }, { cwd: dir }]) {
      const run = await runCli(['scan', '--format', 'json', '--no-allow-private', url], options);
      expect(run.code, run.stderr).toBe(1);
      expect(parseReport(run).pages[0]!.error?.code).toBe('BLOCKED_TARGET');
    }
    expect(server.requestsTo('/clean.html').filter((r) => r.url.includes('policy=flag'))).toEqual([]);
  });

  it('exits 1 on a 404 page and puts the error in the report', async ({ expect }) => {
    const run = await runCli(['scan', '--format', 'json', server.url('/missing.html')]);
    expect(run.code, run.stderr).toBe(1);
    const report = parseReport(run);
    expect(report.summary.pagesFailed).toBe(1);
    expect(report.pages[0]).toMatchObject({ status: 'error', httpStatus: 404, error: { code: 'HTTP_CLIENT_ERROR', message: expect.stringContaining('404') } });
  });

  it('--header reaches the scanned page\'s origin only, with the target policy off and on', async ({ expect }) => {
    const url = server.url('/private.html');
    const without = await runCli(['scan', url, '--format', 'json']);
    expect(without.code).toBe(1);
    expect(parseReport(without).pages[0]!.error?.code).toBe('HTTP_CLIENT_ERROR');
    // Loopback is private: with the policy on, SCAN_ALLOWED_HOSTS lets the test's two hosts through.
    for (const policy of [[], ['--no-allow-private']]) {
      const before = server.requests.length;
      const run = await runCli(['scan', url, '--format', 'json', '--header', 'X-Preview-Token: s3cret', '--header', 'x-audit: wcagai ci', ...policy], { env: { SCAN_ALLOWED_HOSTS: '127.0.0.1,localhost' } });
      expect(run.code, run.stderr).toBe(0);
      expect(parseReport(run).pages[0]!.status).toBe('ok');
      const seen = server.requests.slice(before);
      const own = seen.filter((r) => r.host.startsWith('127.0.0.1:') && (r.path === '/private.html' || r.path === '/own.gif'));
      expect(own.map((r) => r.path).sort(), policy.join(' ')).toEqual(['/own.gif', '/private.html']);
      for (const r of own) expect([r.headers['x-preview-token'], r.headers['x-audit']]).toEqual(['s3cret', 'wcagai ci']);
      const third = seen.filter((r) => r.path === '/third.gif');
      expect(third.map((r) => r.host.split(':')[0])).toEqual(['localhost']);
      expect(third[0]!.headers['x-preview-token']).toBeUndefined();
      expect(third[0]!.headers['x-audit']).toBeUndefined();
    }
  });

  it('writes --output in the format its name asks for when --format is not given', async ({ expect }) => {
    const sarifFile = join(tmp, 'named.sarif');
    const jsonFile = join(tmp, 'named.json');
    const [sarif, json] = await Promise.all([runCli(['scan', '--output', sarifFile, server.url('/clean.html')]), runCli(['scan', '-o', jsonFile, server.url('/clean.html')])]);
    expect([sarif.code, json.code], sarif.stderr + json.stderr).toEqual([0, 0]);
    expect(JSON.parse(await readFile(sarifFile, 'utf8')).version).toBe('2.1.0');
    expect(JSON.parse(await readFile(jsonFile, 'utf8')).tool.name).toBe('wcagai');
  });

  it('takes -o - for standard output, beside a file', async ({ expect }) => {
    const dir = await mkdtemp(join(tmp, 'dash-'));
    const run = await runCli(['scan', '-o', '-', '-o', 'a11y.sarif', server.url('/violation.html')], { cwd: dir });
    expect(run.code, run.stderr).toBe(2);
    expect(parseReport(run).pages[0]!.violations.map((v) => v.id)).toContain('image-alt');
    expect(JSON.parse(await readFile(join(dir, 'a11y.sarif'), 'utf8')).version).toBe('2.1.0');
    expect(run.stderr).toMatch(/report written to a11y\.sarif\n$/);
    // No file named "-".
    await expect(readFile(join(dir, '-'), 'utf8')).rejects.toThrow(/ENOENT/);
  });

  it('writes sarif, junit, html and csv to --output and nothing to stdout', async ({ expect }) => {
    const formats = { sarif: /"version":\s*"2\.1\.0"/, junit: /<testsuites/, html: /^<!doctype html>/i, csv: /^url,status,rule,impact,wcag,/ } as const;
    const runs = await Promise.all(
      Object.entries(formats).map(async ([format, pattern]) => {
        const file = join(tmp, `report.${format}`);
        const run = await runCli(['scan', '--format', format, '--output', file, server.url('/violation.html')]);
        return { format, pattern, run, text: await readFile(file, 'utf8').catch(() => '') };
      }),
    );
    for (const { format, pattern, run, text } of runs) {
      expect(run.code, `${format}: ${run.stderr}`).toBe(2);
      expect(run.stdout, format).toBe('');
      expect(text, format).toMatch(pattern);
      expect(text, format).toContain('image-alt');
    }
    const sarif = JSON.parse(runs.find((r) => r.format === 'sarif')!.text) as { version: string; runs: unknown[] };
    expect(sarif.version).toBe('2.1.0');
    expect(sarif.runs).toHaveLength(1);
  });

  it('writes several reports from one scan, each in the format its --output name asks for', async ({ expect }) => {
    const files = ['many.sarif', 'many.xml', 'many.html', 'many.csv', 'many.json'].map((name) => join(tmp, name));
    // A path of its own: the tests of this file run at the same time.
    server.html('/many.html', page(`<h1>Many</h1><img id="logo" src="${GIF}">`));
    const run = await runCli(['scan', ...files.flatMap((file) => ['-o', file]), server.url('/many.html')]);
    expect(run.code, run.stderr).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr.trim()).toBe(`wcagai: 1 page(s), 1 violation(s), 1 node(s), 0 failed; reports written to ${files.join(', ')}`);
    // One scan: the page was loaded once for all five.
    expect(server.requestsTo('/many.html')).toHaveLength(1);
    const [sarif, junit, html, csv, json] = await Promise.all(files.map((file) => readFile(file, 'utf8')));
    expect(JSON.parse(sarif!).version).toBe('2.1.0');
    expect(junit).toMatch(/<testsuites/);
    expect(html).toMatch(/^<!doctype html>/i);
    expect(csv).toMatch(/^url,status,rule,impact,wcag,/);
    expect(JSON.parse(json!).pages[0].violations.map((v: { id: string }) => v.id)).toEqual(['image-alt']);
    for (const text of [sarif, junit, html, csv]) expect(text).toContain('image-alt');
  });

  it('--urls-file scans every URL listed', async ({ expect }) => {
    const file = join(tmp, 'urls.txt');
    await writeFile(file, `# two pages\n${server.url('/clean.html')}\n\n${server.url('/violation.html')}\n`);
    const run = await runCli(['scan', '--format', 'json', '--urls-file', file]);
    expect(run.code, run.stderr).toBe(2);
    expect(parseReport(run).pages.map((p) => [p.url, p.status])).toEqual([
      [server.url('/clean.html'), 'ok'],
      [server.url('/violation.html'), 'ok'],
    ]);
  });

  it('--sitemap with --limit 1 scans one page', async ({ expect }) => {
    const run = await runCli(['scan', '--format', 'json', '--sitemap', server.url('/sitemap.xml'), '--limit', '1']);
    expect(run.code, run.stderr).toBe(0);
    expect(parseReport(run).pages.map((p) => p.url)).toEqual([server.url('/clean.html')]);
  });

  it('--baseline classifies nodes new/persisting/fixed and gates only on new ones', async ({ expect }) => {
    const url = server.url('/changing.html');
    const first = join(tmp, 'first.json');
    const before = await runCli(['scan', '--format', 'json', '--output', first, url]);
    expect(before.code, before.stderr).toBe(2);

    // The server now serves the second version: image alt fixed, button unchanged, input new.
    const after = await runCli(['scan', '--format', 'json', '--baseline', first, url]);
    expect(after.code, after.stderr).toBe(2);
    const report = parseReport(after);
    const page = report.pages[0]!;
    const statuses = Object.fromEntries(page.violations.map((v) => [v.id, v.nodes.map((n) => n.baseline)]));
    expect(statuses).toEqual({ 'button-name': ['persisting'], label: ['new'] });
    expect(page.fixed).toEqual([{ id: 'image-alt', fingerprint: expect.any(String), target: ['#logo'] }]);
    expect(report.summary.baseline).toEqual({ new: 1, persisting: 1, fixed: 1 });

    // The 2 came from the new node alone: without its rule, the persisting node does not gate.
    const withoutNew = await runCli(['scan', '--format', 'json', '--baseline', first, '--disable-rules', 'label', url]);
    expect(withoutNew.code, withoutNew.stderr).toBe(0);

    // A baseline equal to the current state (the last report of this version) gates on nothing.
    const current = join(tmp, 'current.json');
    await writeFile(current, after.stdout);
    const same = await runCli(['scan', '--format', 'json', '--baseline', current, url]);
    expect(same.code, same.stderr).toBe(0);
    const samePage = parseReport(same).pages[0]!;
    expect(samePage.violations.flatMap((v) => v.nodes.map((n) => n.baseline))).toEqual(['persisting', 'persisting']);
    expect(samePage.fixed).toEqual([]);
  });
});
