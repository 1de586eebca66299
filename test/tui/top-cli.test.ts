import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Snapshot } from '../../src/domain/snapshot.js';
import { keysFor } from '../../src/queue/keys.js';
import { BIN, ROOT, runCli } from '../cli/run-cli.js';
import { freePort } from '../support/net.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { uniquePrefix, waitFor } from '../support/service.js';
import { hasTmux, startTerminal, type Terminal } from '../support/terminal.js';
import { seedDlq, writeHeartbeats } from './fixtures.js';

/**
 * `wcagai top` as operators run it: the compiled CLI against a `wcagai serve` child, once in a
 * real terminal (a tmux pane: reads the screen, presses keys, quits, checks the terminal is
 * restored), and without one (--once --json, the no-terminal message, --help without React).
 */

const TOKEN = 'top-cli-test-admin-token-0123456789';
let redis: RedisServer;
let serve: ChildProcess;
let url: string;
let dir: string;

beforeAll(async () => {
  redis = await startRedisServer();
  dir = mkdtempSync(join(tmpdir(), 'wcagai-top-'));
  const prefix = uniquePrefix('top');
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  serve = spawn(process.execPath, [BIN, 'serve', '--no-worker', '--port', String(port)], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, REDIS_URL: redis.url, QUEUE_PREFIX: prefix, ADMIN_TOKEN: TOKEN, LOG_LEVEL: 'warn', NODE_ENV: 'test' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  serve.stderr?.resume();
  await waitFor(async () => (await fetch(`${url}/health/live`)).ok, { what: 'serve to listen', timeoutMs: 30_000 });
  const conn = new Redis(redis.url);
  const keys = keysFor(prefix);
  await writeHeartbeats(conn, keys, 3, 120_000);
  await seedDlq(conn, keys, 2);
  conn.disconnect();
});

afterAll(async () => {
  serve?.kill('SIGTERM');
  await new Promise((r) => (serve && serve.exitCode === null ? serve.once('exit', r) : r(null)));
  await redis?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('wcagai top without a terminal', () => {
  it('--once --json prints one snapshot', async () => {
    const run = await runCli(['top', '--once', '--json', '--url', url, '--token', TOKEN]);
    expect(run.code, run.stderr).toBe(0);
    const s = JSON.parse(run.stdout) as Snapshot;
    expect(s).toMatchObject({ version: 1, workers: expect.any(Array), dlq: { size: 2 }, queue: { paused: false } });
    expect(s.workers).toHaveLength(3);
  });

  it('takes ADMIN_TOKEN and WCAGAI_URL from the environment; a wrong token is one line, exit 1', async () => {
    expect((await runCli(['top', '--once', '--json'], { env: { WCAGAI_URL: url, ADMIN_TOKEN: TOKEN } })).code).toBe(0);
    const bad = await runCli(['top', '--once', '--json', '--url', url, '--token', 'not-the-admin-token']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe("wcagai: the bearer token is not this server's ADMIN_TOKEN\n");
  });

  it('without --once and without a terminal: says to use --once, exit 1', async () => {
    const run = await runCli(['top', '--url', url, '--token', TOKEN]);
    expect(run.code).toBe(1);
    expect(run.stderr).toBe('wcagai: top needs a terminal; use --once (with --json for scripts) to print one snapshot\n');
  });

  it('--help loads neither React nor Ink; top --once (text) does', async () => {
    const trace = ['--import', './test/tui/trace-imports.mjs'];
    const help = await runCli(['--help'], { nodeArgs: trace });
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('top [options]');
    expect(help.stderr).not.toContain('LOADED');
    const once = await runCli(['top', '--once', '--url', url, '--token', TOKEN], { nodeArgs: trace });
    expect(once.code, once.stderr).toBe(0);
    expect(once.stderr).toMatch(/LOADED .*node_modules\/ink\//);
    expect(once.stdout).toContain('DLQ 2 entries');
  });
});

describe('wcagai top in a real terminal (tmux)', () => {
  // .ci/run installs tmux; without it this fails loudly rather than skipping.
  beforeAll(() => {
    if (!hasTmux()) throw new Error('tmux is needed for the terminal test of wcagai top (apt-get install -y tmux)');
  });

  let term: Terminal;

  afterAll(async () => {
    await term?.close();
  });

  it('shows the fleet, follows Tab, ? and a resize, and q quits restoring the terminal', async () => {
    const before = join(dir, 'stty.before');
    const after = join(dir, 'stty.after');
    const command = `stty -g > ${before}; node ${BIN} top --url ${url} --token ${TOKEN}; echo "top exited with $?"; stty -g > ${after}; cmp -s ${before} ${after} && echo "terminal restored"; sleep 60`;
    term = await startTerminal(command, { columns: 100, rows: 30, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' } });
    // Generous: under load the first snapshot can take a while; the assertion is what shows, not how fast.
    const screen = await term.waitFor(/live \(stream\)/, 90_000);
    expect(screen).toContain(url);
    expect(screen).toMatch(/3 workers/);
    expect(screen).toMatch(/▶ DLQ 2 entries/);
    expect(await term.variable('alternate_on')).toBe('1');

    await term.send('Tab');
    await term.waitFor(/▶ ALERTS/);
    await term.send('?', true);
    await term.waitFor(/KEYS/);
    await term.send('?', true);
    await term.waitFor(/▶ ALERTS/);

    await term.resize(80, 24);
    // Redrawn for the new size: the header on the first line, nothing wider than 80 columns.
    const small = await waitFor(
      async () => {
        const text = await term.screen();
        const lines = text.replace(/\n+$/, '').split('\n');
        return /^wcagai top ● /.test(lines[0] ?? '') && lines.length <= 24 && lines.every((l) => l.length <= 80) && /▶ ALERTS/.test(text) ? text : undefined;
      },
      { what: 'the 80x24 layout', timeoutMs: 15_000 },
    );
    expect(small).toMatch(/Tab focus/);

    await term.send('q', true);
    const end = await term.waitFor(/terminal restored/, 15_000);
    // (The line before may have scrolled into the history when the screen shrank.)
    expect(await term.history()).toContain('top exited with 0');
    // The normal screen is back, with its cursor; the dashboard is gone from it (read while the shell still runs).
    expect(await term.variable('alternate_on')).toBe('0');
    expect(await term.variable('cursor_flag')).toBe('1');
    expect(end).not.toContain('BREAKERS');
    expect(readFileSync(after, 'utf8')).toBe(readFileSync(before, 'utf8'));
  }, 180_000);

  it('kill -TERM, -HUP or -INT quits like q: the normal screen back, exit 128 + the signal', async () => {
    const signals = [
      ['TERM', 143],
      ['HUP', 129],
      ['INT', 130],
    ] as const;
    const command = `for s in ${signals.map(([s]) => s).join(' ')}; do node ${BIN} top --url ${url}; echo "top exited with $? at $s"; done; sleep 60`;
    const killed = await startTerminal(command, { columns: 100, rows: 30, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ADMIN_TOKEN: TOKEN } });
    try {
      for (const [sig, code] of signals) {
        await waitFor(async () => /live \(stream\)/.test(await killed.screen()) && (await killed.variable('alternate_on')) === '1', { what: `the dashboard before SIG${sig}`, timeoutMs: 90_000 });
        const top = execFileSync('pgrep', ['-P', String(await killed.panePid()), 'node'], { encoding: 'utf8' }).trim();
        process.kill(Number(top), `SIG${sig}`);
        const screen = await killed.waitFor(new RegExp(`top exited with \\d+ at ${sig}`), 15_000);
        expect(screen).toContain(`top exited with ${code} at ${sig}`);
        expect(await killed.variable('alternate_on')).toBe('0');
        expect(await killed.variable('cursor_flag')).toBe('1');
        expect(screen).not.toContain('BREAKERS');
      }
    } finally {
      await killed.close();
    }
  }, 300_000);
});
