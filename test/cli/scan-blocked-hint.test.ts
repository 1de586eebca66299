import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Report } from '../../src/domain/scan.js';
import { checkTarget } from '../../src/scanner/target-guard.js';
import { page, startFixtureServer, type FixtureServer } from '../support/fixture-server.js';
import { runCli, type CliRun } from './run-cli.js';

/**
 * What a BLOCKED_TARGET refusal tells the user to do: whatever refused the target, not a setting
 * that would change nothing. CLI runs need `npm run build`.
 */

let server: FixtureServer;
let tmp: string;

beforeAll(async () => {
  server = await startFixtureServer();
  server.html('/clean.html', page('<h1>Clean</h1><p>Nothing to find here.</p>')).body(
    '/sitemap.xml',
    'application/xml',
    `<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>${server.url('/clean.html')}</loc></url></urlset>`,
  );
  tmp = await mkdtemp(join(tmpdir(), 'wcagai-hint-'));
});

afterAll(async () => {
  await server?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/** The refusal of the one page of a JSON report. */
function refusal(run: CliRun): string {
  expect(run.code, run.stderr).toBe(1);
  const error = (JSON.parse(run.stdout) as Report).pages[0]!.error;
  expect(error?.code).toBe('BLOCKED_TARGET');
  return error!.message;
}

describe('wcagai scan: how a refused private target can be allowed', () => {
  it('--no-allow-private names the flag, not ALLOW_PRIVATE_TARGETS (which it overrides), with the variable in the environment, in .env or unset', async () => {
    const dir = await mkdtemp(join(tmp, 'dotenv-true-'));
    await writeFile(join(dir, '.env'), 'ALLOW_PRIVATE_TARGETS=true\n');
    const url = server.url('/clean.html');
    for (const options of [{}, { env: { ALLOW_PRIVATE_TARGETS: 'true' } }, { cwd: dir }]) {
      const message = refusal(await runCli(['scan', '--format', 'json', '--no-allow-private', url], options));
      expect(message, JSON.stringify(options)).toBe('refusing to scan 127.0.0.1: 127.0.0.1 is a private or reserved address (drop --no-allow-private or list the host in SCAN_ALLOWED_HOSTS to allow it)');
    }
    // The same words when the sitemap itself is refused, before any page is loaded.
    const sitemap = await runCli(['scan', '--no-allow-private', '--sitemap', server.url('/sitemap.xml')], { env: { ALLOW_PRIVATE_TARGETS: 'true' } });
    expect(sitemap.code).toBe(1);
    expect(sitemap.stderr.trimEnd()).toMatch(/^wcagai: .*refusing to scan 127\.0\.0\.1: .*\(drop --no-allow-private or list the host in SCAN_ALLOWED_HOSTS to allow it\)$/);
    expect(sitemap.stderr).not.toContain('ALLOW_PRIVATE_TARGETS');
    // And following it works: the flag kept, the host listed.
    const listed = await runCli(['scan', '--format', 'json', '--no-allow-private', url], { env: { SCAN_ALLOWED_HOSTS: '127.0.0.1' } });
    expect(listed.code, listed.stderr).toBe(0);
  });

  it('without the flag, names ALLOW_PRIVATE_TARGETS as it was set, in the environment or in .env', async ({ expect }) => {
    const url = server.url('/clean.html');
    const fromEnvironment = refusal(await runCli(['scan', '--format', 'json', url], { env: { ALLOW_PRIVATE_TARGETS: '0' } }));
    expect(fromEnvironment).toMatch(/\(ALLOW_PRIVATE_TARGETS=0 in the environment: set it to true or list the host in SCAN_ALLOWED_HOSTS to allow it\)$/);
    const dir = await mkdtemp(join(tmp, 'dotenv-false-'));
    await writeFile(join(dir, '.env'), 'ALLOW_PRIVATE_TARGETS=false\n');
    const fromDotEnv = refusal(await runCli(['scan', '--format', 'json', url], { cwd: dir }));
    expect(fromDotEnv).toMatch(/\(ALLOW_PRIVATE_TARGETS=false in \.env: set it to true or list the host in SCAN_ALLOWED_HOSTS to allow it\)$/);
    // The environment wins over .env, so it is the one named.
    const both = refusal(await runCli(['scan', '--format', 'json', url], { cwd: dir, env: { ALLOW_PRIVATE_TARGETS: 'no' } }));
    expect(both).toMatch(/\(ALLOW_PRIVATE_TARGETS=no in the environment: /);
  });

  it('a policy that gives no hint (the server\'s and worker\'s) names the service\'s settings, which only its operator changes', async () => {
    const policy = { allowPrivate: false, allowedHosts: [], resolve: async () => ['10.0.0.7'] };
    await expect(checkTarget('http://intranet.example/', policy)).rejects.toMatchObject({
      code: 'BLOCKED_TARGET',
      message: 'refusing to scan intranet.example: it resolves to private address 10.0.0.7 (allowed only where the service sets ALLOW_PRIVATE_TARGETS=true or lists the host in SCAN_ALLOWED_HOSTS)',
    });
  });
});
