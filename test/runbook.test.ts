import { readdirSync, readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { SHUTDOWN_GRACE_MS } from '../src/app/lifecycle.js';
import { buildProgram } from '../src/cli/main.js';
import { ALERT_RULES, envSchema, SERVICE_PREFIXES } from '../src/config/schema.js';
import { ERRORS } from '../src/errors/catalogue.js';

/**
 * RUNBOOK.md may only name what the project provides: every `wcagai …` command and flag exists in
 * the CLI, every environment variable in the configuration schema, every /api, /admin, /health and
 * /metrics path (with its method, when one is given) among the registered routes. Source only: no
 * Chromium, no Redis, no build.
 */

const read = (path: string) => readFileSync(new URL(path, import.meta.url), 'utf8');
const runbook = read('../RUNBOOK.md');
const readme = read('../README.md');

/** Lines inside ``` fences, and inline code spans of the text outside them. */
function markdownCode(md: string): { blockLines: string[]; spans: string[] } {
  const blockLines: string[] = [];
  const prose: string[] = [];
  let fenced = false;
  for (const line of md.split('\n')) {
    if (/^\s*```/.test(line)) {
      fenced = !fenced;
      continue;
    }
    (fenced ? blockLines : prose).push(line);
  }
  const spans = [...prose.join('\n').matchAll(/`([^`\n]+)`/g)].map((m) => m[1]!);
  return { blockLines, spans };
}

const { blockLines, spans } = markdownCode(runbook);
/** Code lines without their shell comments (`# …`), which are prose. */
const commandLines = blockLines.map((l) => l.replace(/(^|\s)#.*$/, '')).filter((l) => l.trim());

// ---------------------------------------------------------------- CLI

/** The argument lists of every `wcagai …` invocation in code (blocks and inline spans). */
function wcagaiInvocations(): Array<{ source: string; args: string[] }> {
  const out: Array<{ source: string; args: string[] }> = [];
  for (const source of [...commandLines, ...spans]) {
    for (const m of source.matchAll(/(?:^|[\s;&|(])(?:[^\s`'"=]*\/)?wcagai[ \t]+(?=\S)([^\n]*)/g)) {
      const rest = m[1]!.split(/\s(?:\||;|&&|>|2>)\s|`/)[0]!;
      out.push({ source: source.trim(), args: rest.split(/\s+/).filter(Boolean) });
    }
  }
  return out;
}

function hasOption(command: Command, flag: string): boolean {
  if (flag === '--help' || flag === '-h') return true;
  return command.options.some((o) => o.long === flag || o.short === flag);
}

/** Walks `args` down the commander tree; returns the command reached and what does not exist. */
function checkInvocation(program: Command, args: string[]): { path: string; problems: string[] } {
  const problems: string[] = [];
  let command = program;
  const path = ['wcagai'];
  for (const raw of args) {
    const token = raw.replace(/^[[(]+|[\]),]+$/g, '');
    if (!token || token === '…' || token === '...' || token === '\\') continue;
    if (token.startsWith('-')) {
      const flag = token.split('=')[0]!;
      if (!hasOption(command, flag)) problems.push(`${path.join(' ')}: no option ${flag}`);
      continue;
    }
    const sub = command.commands.find((c) => c.name() === token || c.aliases().includes(token));
    if (sub) {
      command = sub;
      path.push(token);
      continue;
    }
    // A group (dlq, breakers, …) takes no arguments of its own: a plain word there is an unknown subcommand.
    if (command.commands.length > 0 && command.registeredArguments.length === 0 && /^[a-z][a-z-]*$/.test(token)) {
      problems.push(`${path.join(' ')}: no subcommand ${token}`);
    }
  }
  return { path: path.join(' '), problems };
}

// ---------------------------------------------------------------- environment

const SCHEMA_VARS = new Set(Object.keys(envSchema.shape));
/** Upper-case identifiers that are not settings: error codes, alert rules, breaker states, signals, code constants. */
const NOT_SETTINGS = new Set<string>([
  ...Object.keys(ERRORS),
  ...ALERT_RULES,
  'CLOSED',
  'OPEN',
  'HALF_OPEN',
  'ISOLATED',
  'SIGTERM',
  'SIGINT',
  'SIGKILL',
  'JOB_SCHEMA_VERSION',
]);
const PLACEHOLDERS: Record<string, readonly string[]> = { '<RULE>': ALERT_RULES, '<SERVICE>': SERVICE_PREFIXES };

/** `ALERT_<RULE>_THRESHOLD` -> every rule's variable; plain names as they are. */
function expand(name: string): string[] {
  const placeholder = Object.keys(PLACEHOLDERS).find((p) => name.includes(p));
  if (!placeholder) return [name];
  return PLACEHOLDERS[placeholder]!.flatMap((v) => expand(name.replace(placeholder, v)));
}

/** Names used as environment variables: `NAME=…`, `$NAME`/`${NAME}` in code, and upper-case identifiers in inline code. */
function envMentions(): { assigned: Set<string>; identifiers: Set<string> } {
  const assigned = new Set<string>();
  const identifiers = new Set<string>();
  for (const source of [...commandLines, ...spans]) {
    for (const m of source.matchAll(/(?<![A-Za-z0-9_$-])([A-Z][A-Z0-9_]*)=/g)) assigned.add(m[1]!);
    for (const m of source.matchAll(/\$\{?([A-Z][A-Z0-9_]*)\}?/g)) assigned.add(m[1]!);
  }
  for (const span of spans) {
    if (/^(?:[A-Z][A-Z0-9]*|<[A-Z]+>)(?:_(?:[A-Z0-9]+|<[A-Z]+>))+$/.test(span)) identifiers.add(span);
  }
  return { assigned, identifiers };
}

// ---------------------------------------------------------------- routes

const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH'] as const;
type Method = (typeof METHODS)[number];
interface Route {
  method: Method;
  path: string;
}

/**
 * Routes registered with `app.get|post|put|delete|patch(...)` in the route files and the metrics
 * plugin. A path given as a variable is resolved from `const name = '…'`; a `${x}` inside it is
 * expanded over `for (const x of ['a', 'b'])` in the same file.
 */
function registeredRoutes(): Route[] {
  const dir = new URL('../src/http/routes/', import.meta.url);
  const files = [
    ...readdirSync(dir)
      .filter((f) => f.endsWith('.ts'))
      .map((f) => readFileSync(new URL(f, dir), 'utf8')),
    read('../src/http/plugins/metrics.ts'),
  ];
  const routes: Route[] = [];
  for (const text of files) {
    const loops = new Map<string, string[]>();
    for (const m of text.matchAll(/for \(const (\w+) of \[([^\]]*)\]/g)) loops.set(m[1]!, [...m[2]!.matchAll(/'([^']*)'/g)].map((v) => v[1]!));
    const consts = new Map<string, string>();
    for (const m of text.matchAll(/const (\w+) = (['"`])(\/[^'"`]*)\2/g)) consts.set(m[1]!, m[3]!);
    for (const m of text.matchAll(/\bapp\.(get|post|put|delete|patch)\s*(?:<[^(]*?>)?\(\s*(?:(['"`])([^'"`]*)\2|(\w+))/g)) {
      const literal = m[3] ?? consts.get(m[4]!);
      if (!literal) continue;
      let paths = [literal];
      for (const [name, values] of loops) {
        if (literal.includes(`\${${name}}`)) paths = paths.flatMap((p) => values.map((v) => p.replaceAll(`\${${name}}`, v)));
      }
      for (const path of paths) routes.push({ method: m[1]!.toUpperCase() as Method, path });
    }
  }
  return routes;
}

/** Paths the runbook names, with the method written before them (`POST /admin/…`, `curl -X POST …`). */
function pathMentions(): Array<{ path: string; method?: Method; line: string }> {
  const out: Array<{ path: string; method?: Method; line: string }> = [];
  for (const line of runbook.split('\n')) {
    for (const m of line.matchAll(/(?<![a-z_.\-/])(\/(?:api|admin|health|metrics)(?![A-Za-z0-9_-])(?:\/[^\s`'"?#)<>,;|]*)?)/g)) {
      const path = m[1]!.replace(/[.:]+$/, '').replace(/(.)\/$/, '$1');
      const before = line.slice(0, m.index);
      const written = /\b(GET|POST|PUT|DELETE|PATCH)\s+$/.exec(before)?.[1] as Method | undefined;
      let method = written;
      if (!method && /\bcurl\b/.test(before)) method = (/\s-X\s+([A-Z]+)/.exec(line)?.[1] as Method | undefined) ?? (/\s(-d|--data)\s/.test(line) ? 'POST' : 'GET');
      out.push({ path, ...(method ? { method } : {}), line: line.trim() });
    }
  }
  return out;
}

/** Whether `path` (segments literal, `*` at the end for "anything below") names a registered route. */
function routeMatches(route: Route, path: string): boolean {
  const want = path.split('/');
  const have = route.path.split('/');
  if (want.at(-1) === '*') return route.path.startsWith(`${want.slice(0, -1).join('/')}/`);
  if (want.length !== have.length) return false;
  return have.every((seg, i) => (seg.startsWith(':') ? want[i]!.length > 0 : seg === want[i]));
}

// ---------------------------------------------------------------- tests

describe('RUNBOOK.md', () => {
  it('uses only wcagai commands and flags the CLI has', () => {
    const program = buildProgram(() => undefined);
    const invocations = wcagaiInvocations();
    const checked = invocations.map(({ source, args }) => ({ source, ...checkInvocation(program, args) }));
    expect(checked.flatMap(({ source, problems }) => problems.map((p) => `${p}   (in: ${source})`))).toEqual([]);
    // The extractor found the commands an operator needs (guards against checking nothing).
    const reached = new Set(checked.map((c) => c.path));
    const needed = ['serve', 'worker', 'config check', 'top', 'dlq stats', 'dlq list', 'dlq show', 'dlq retry', 'dlq delete', 'dlq purge', 'breakers list', 'breakers reset', 'breakers isolate', 'queue status', 'queue pause', 'queue resume', 'alerts test'];
    expect(needed.filter((n) => !reached.has(`wcagai ${n}`))).toEqual([]);
  });

  it('names only environment variables of the configuration schema', () => {
    const { assigned, identifiers } = envMentions();
    const unknownAssigned = [...assigned].flatMap(expand).filter((n) => !SCHEMA_VARS.has(n));
    const unknownIdentifiers = [...identifiers].filter((n) => !NOT_SETTINGS.has(n)).flatMap(expand).filter((n) => !SCHEMA_VARS.has(n));
    expect({ unknownAssigned, unknownIdentifiers }).toEqual({ unknownAssigned: [], unknownIdentifiers: [] });
    expect(read('../src/queue/job.ts')).toContain('export const JOB_SCHEMA_VERSION');
    expect(identifiers.size).toBeGreaterThan(20);
  });

  it('names only registered routes, with their methods', () => {
    const routes = registeredRoutes();
    // The extractor sees literal, variable and loop-expanded paths.
    for (const [method, path] of [
      ['POST', '/api/scans'],
      ['GET', '/health/ready'],
      ['GET', '/metrics'],
      ['POST', '/admin/breakers/:name/isolate'],
      ['DELETE', '/admin/dlq/jobs/:id'],
    ] as const) {
      expect(routes, `${method} ${path}`).toContainEqual({ method, path });
    }
    const mentions = pathMentions();
    const problems = mentions
      .filter(({ path, method }) => !routes.some((r) => (!method || path.endsWith('/*') || r.method === method) && routeMatches(r, path)))
      .map(({ path, method, line }) => `${method ?? '(any)'} ${path}   (in: ${line})`);
    expect(problems).toEqual([]);
    expect(mentions.length).toBeGreaterThan(30);
  });

  it('covers the Redis settings BullMQ needs, every alert rule and every breaker', () => {
    for (const setting of ['maxmemory-policy noeviction', 'appendonly yes', 'appendfsync everysec', 'QUEUE_PREFIX', 'REDIS_URL']) expect(runbook).toContain(setting);
    for (const rule of ALERT_RULES) expect(runbook, rule).toContain(`### \`${rule}\``);
    for (const service of SERVICE_PREFIXES) expect(runbook, service).toContain(`\`${service.toLowerCase()}\``);
  });

  it('states the shutdown limits the code enforces', () => {
    expect(runbook).toContain(`\`SHUTDOWN_TIMEOUT\` + ${SHUTDOWN_GRACE_MS / 1000} s`);
    expect(envSchema.shape.SHUTDOWN_TIMEOUT.parse(undefined)).toBe(30_000);
    expect(runbook).toContain('`SHUTDOWN_TIMEOUT` (default `30s`');
  });

  it('is linked from the README', () => {
    expect(readme).toMatch(/\]\(RUNBOOK\.md\)/);
  });
});
