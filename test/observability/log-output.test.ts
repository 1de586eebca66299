/**
 * Where `wcagai serve` writes its log and in what form: readable (pino-pretty) only on a terminal
 * with LOG_PRETTY not false, JSON lines otherwise, and always JSON in LOG_FILE. The terminal is a
 * real pseudo-terminal (tmux; .ci/run installs it).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN } from '../cli/run-cli.js';
import { freePort } from '../support/net.js';
import { isAlive, waitForExit } from '../support/processes.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { uniquePrefix, waitFor } from '../support/service.js';
import { hasTmux, startTerminal, type Terminal } from '../support/terminal.js';

let redis: RedisServer;
let dir: string;
const terminals: Terminal[] = [];

beforeAll(async () => {
  if (!hasTmux()) throw new Error('tmux is needed for the terminal log test (apt-get install -y tmux)');
  redis = await startRedisServer();
  dir = mkdtempSync(join(tmpdir(), 'wcagai-logs-'));
}, 30_000);

afterAll(async () => {
  await Promise.allSettled(
    terminals.map(async (t) => {
      try {
        const pid = await t.panePid();
        if (pid > 0 && isAlive(pid)) {
          process.kill(pid, 'SIGTERM');
          if ((await waitForExit([pid], 15_000)).length) throw new Error(`serve (pid ${pid}) did not exit within 15 s of SIGTERM`);
        }
      } finally {
        await t.close();
      }
    }),
  );
  await redis?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function serveEnv(extra: Record<string, string> = {}): Promise<Record<string, string>> {
  return {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '',
    REDIS_URL: redis.url,
    QUEUE_PREFIX: uniquePrefix('logs'),
    PORT: String(await freePort()),
    ALERTS_ENABLED: 'false',
    ...extra,
  };
}

/** `wcagai serve --no-worker` in a terminal, until it says it listens; the screen then. */
async function serveInTerminal(env: Record<string, string>): Promise<string> {
  // The pane's process is serve itself (exec), so closing the terminal cannot leave it running.
  const term = await startTerminal(`exec node ${BIN} serve --no-worker`, { columns: 220, rows: 40, env });
  terminals.push(term);
  return term.waitFor(/wcagai listening on/, 60_000);
}

describe('log output', () => {
  it('is readable on a terminal, while LOG_FILE gets JSON lines', async () => {
    const file = join(dir, 'logs', 'combined.log');
    const screen = await serveInTerminal(await serveEnv({ LOG_FILE: file }));
    // pino-pretty: `[12:34:56.789] INFO (wcagai/1234): wcagai listening on …`, no JSON object.
    expect(screen).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO \(wcagai\/\d+\): wcagai listening on http:\/\/127\.0\.0\.1:\d+/m);
    expect(screen).not.toContain('{"level"');
    const line = await waitFor(() => readFileSync(file, 'utf8').split('\n').find((l) => l.includes('"serve.listening"')), { what: 'the listening line in LOG_FILE' });
    expect(JSON.parse(line)).toMatchObject({ level: 30, event: 'serve.listening', msg: expect.stringMatching(/^wcagai listening on /) });
  });

  it('stays JSON on a terminal when LOG_PRETTY=false', async () => {
    const screen = await serveInTerminal(await serveEnv({ LOG_PRETTY: 'false' }));
    expect(screen).toMatch(/^\{"level":30,.*"event":"serve\.listening".*"msg":"wcagai listening on /m);
  });

  it('is JSON lines when stdout is not a terminal', async () => {
    const env = await serveEnv();
    const child = spawn(process.execPath, [BIN, 'serve', '--no-worker'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    try {
      // Whole lines only: a chunk may end in the middle of one.
      const line = await waitFor(() => out.split('\n').slice(0, -1).find((l) => l.includes('wcagai listening on')), { timeoutMs: 60_000, what: `serve to listen:\n${out}` });
      expect(JSON.parse(line)).toMatchObject({ level: 30, event: 'serve.listening' });
      // Every line of stdout is a JSON object.
      for (const l of out.split('\n').slice(0, -1).filter((x) => x.trim())) expect(() => JSON.parse(l), l).not.toThrow();
    } finally {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
    }
  });
});
