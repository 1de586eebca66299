import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { freePort } from '../support/net.js';
import { BIN, cliEnv, runCli } from './run-cli.js';

/**
 * `wcagai dlq … --url` on a port fetch refuses before connecting (the Fetch standard's "bad
 * ports": 6000, 6666, 10080…): one line saying so, exit 1, not "fetch failed". The admin
 * commands on the shared API client (breakers, alerts, queue) say it alike; `wcagai serve` on such a
 * port warns at start (it still serves: curl connects).
 */

const refused = (port: number) => `port ${port} is one that HTTP clients refuse to connect to (a "bad port" of the Fetch standard): choose another port`;

describe('a --url on a port fetch refuses', () => {
  it('dlq list and stats say so in one line naming the port, exit 1', async () => {
    const runs = await Promise.all([
      runCli(['dlq', 'list', '--url', 'http://127.0.0.1:6000/', '--token', 't']),
      runCli(['dlq', 'stats', '--url', 'http://127.0.0.1:6666', '--token', 't']),
    ]);
    expect(runs.map((r) => [r.code, r.stdout, r.stderr])).toEqual([
      [1, '', `wcagai: cannot reach the wcagai server at http://127.0.0.1:6000: ${refused(6000)}\n`],
      [1, '', `wcagai: cannot reach the wcagai server at http://127.0.0.1:6666: ${refused(6666)}\n`],
    ]);
  });

  it('breakers list says it alike', async () => {
    const run = await runCli(['breakers', 'list', '--url', 'http://127.0.0.1:10080', '--token', 't']);
    expect([run.code, run.stdout, run.stderr]).toEqual([1, '', `wcagai: cannot reach the wcagai server at http://127.0.0.1:10080: ${refused(10080)}\n`]);
  });
});

describe('wcagai serve on a port fetch refuses', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedisServer();
  });
  afterAll(async () => {
    await redis?.close();
  });

  /** A port of `candidates` nothing listens on now (the first one free). */
  async function freeAmong(candidates: number[]): Promise<number> {
    for (const port of candidates) {
      const free = await new Promise<boolean>((resolve) => {
        const probe = createServer().once('error', () => resolve(false));
        probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
      });
      if (free) return port;
    }
    throw new Error(`none of ${candidates.join(', ')} is free`);
  }

  /** Runs `wcagai serve --no-worker` on `port` until it listens, then stops it: what it wrote to stderr. */
  async function serveUntilListening(port: number, how: 'flag' | 'env'): Promise<{ stderr: string; code: number | null }> {
    const args = ['serve', '--no-worker', '--host', '127.0.0.1', ...(how === 'flag' ? ['--port', String(port)] : [])];
    const env = { ...cliEnv(), REDIS_URL: redis.url, QUEUE_PREFIX: `badport${port}`, LOG_LEVEL: 'info', NODE_ENV: 'test', ...(how === 'env' ? { PORT: String(port) } : {}) };
    const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const listening = new Promise<void>((resolve) =>
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        stdout += d;
        if (stdout.includes('"serve.listening"')) resolve();
      }),
    );
    const first = await Promise.race([listening.then(() => 'listening' as const), exited.then(() => 'exited' as const)]);
    if (first === 'exited') throw new Error(`serve exited before listening:\n${stdout}\n${stderr}`);
    child.kill('SIGTERM');
    return { stderr, code: await exited };
  }

  it('warns in one line on stderr and starts all the same (curl can still use it), whether --port or PORT says it', { timeout: 90_000 }, async () => {
    const warning = (port: number) => `wcagai: warning: port ${port} is one that browsers and HTTP clients (wcagai top, stress, dlq --url) refuse to connect to (a "bad port" of the Fetch standard): choose another port\n`;
    const viaFlag = await freeAmong([6669, 6668, 6667, 6666, 6665, 10080]);
    expect(await serveUntilListening(viaFlag, 'flag')).toEqual({ stderr: warning(viaFlag), code: 0 });
    const viaEnv = await freeAmong([10080, 6665, 6666, 6667, 6668, 6669].filter((p) => p !== viaFlag));
    expect(await serveUntilListening(viaEnv, 'env')).toEqual({ stderr: warning(viaEnv), code: 0 });
    // Any other port: not a word.
    expect(await serveUntilListening(await freePort(), 'flag')).toEqual({ stderr: '', code: 0 });
  });
});
