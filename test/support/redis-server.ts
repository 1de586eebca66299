import { Redis } from 'ioredis';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, redisPing as ping } from './net.js';

/** A private `redis-server` child for one test file: loopback only, no persistence unless asked for. */
export interface RedisServer {
  /** `redis://127.0.0.1:PORT`. */
  url: string;
  port: number;
  /** The child's pid while it runs, else null. */
  readonly pid: number | null;
  /** Kills the server (SIGKILL: clients see the connection drop at once, as in a crash). */
  stop(): Promise<void>;
  /** Starts it again on the same port and waits for PING: empty, or with what the AOF kept when `appendOnly` is on. */
  restart(): Promise<void>;
  /** Stops it for good and removes its directory. */
  close(): Promise<void>;
}

const BINARY = process.env.REDIS_SERVER_BIN ?? 'redis-server';

// Every child of this process, killed on exit even when a test file crashes before its afterAll.
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});



function waitExit(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/**
 * Spawns `redis-server args…` (killed when this process exits) and waits until it answers PING on
 * `port` (PING answers -LOADING until an append-only file has been read back). Resolves with the
 * child, or, when it exits or stays silent for 10 s, kills it and resolves with null and the tail
 * of its output.
 */
export async function launchRedis(args: string[], port: number, cwd?: string): Promise<{ proc: ChildProcess | null; output: string }> {
  let output = '';
  const proc = spawn(BINARY, args, { stdio: ['ignore', 'pipe', 'pipe'], ...(cwd ? { cwd } : {}) });
  running.add(proc);
  proc.once('exit', () => running.delete(proc));
  // Keep the pipes drained (a full pipe would block the server); the tail explains a failed start.
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-4_000);
  };
  proc.stdout?.on('data', keep);
  proc.stderr?.on('data', keep);
  let exited = false;
  proc.once('exit', () => {
    exited = true;
  });
  proc.once('error', (err) => {
    exited = true;
    output += `\n${err.message}`;
  });
  const until = Date.now() + 10_000;
  while (Date.now() < until && !exited) {
    if (await ping(port)) return { proc, output };
    await new Promise((r) => setTimeout(r, 25));
  }
  proc.kill('SIGKILL');
  await waitExit(proc);
  return { proc: null, output };
}

export interface RedisServerOptions {
  /** Persist every write to an append-only file in the server's directory, reloaded by `restart()`. */
  appendOnly?: boolean;
  /** `appendfsync` with `appendOnly` (default `everysec`, Redis's own default). */
  appendFsync?: 'always' | 'everysec' | 'no';
}

/** Starts `redis-server` on a free port in its own temp dir and resolves once it answers PING. */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  const persistence = options.appendOnly ? ['--appendonly', 'yes', '--appendfsync', options.appendFsync ?? 'everysec'] : ['--appendonly', 'no'];
  const dir = mkdtempSync(join(tmpdir(), 'wcagai-redis-'));
  let child: ChildProcess | null = null;
  let output = '';

  const launch = async (port: number): Promise<boolean> => {
    const started = await launchRedis(
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', ...persistence, '--dir', dir, '--daemonize', 'no', '--protected-mode', 'yes', '--loglevel', 'warning'],
      port,
    );
    output = started.output;
    child = started.proc ?? child;
    return started.proc !== null;
  };

  let port = 0;
  for (let attempt = 0; attempt < 5 && !child; attempt++) {
    port = await freePort();
    await launch(port);
  }
  if (!child) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`redis-server did not start:\n${output}`);
  }

  const stop = async () => {
    const proc = child;
    child = null;
    if (!proc) return;
    proc.kill('SIGKILL');
    await waitExit(proc);
  };

  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    get pid() {
      return child?.pid ?? null;
    },
    stop,
    async restart() {
      await stop();
      // The port was ours a moment ago; a stranger taking it in between is not worth handling.
      for (let attempt = 0; attempt < 3; attempt++) if (await launch(port)) return;
      throw new Error(`redis-server did not restart on port ${port}:\n${output}`);
    },
    async close() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A `redis-server` of its own that requires `password` (started open, then locked with CONFIG SET). */
export async function startLockedRedisServer(password: string): Promise<RedisServer> {
  const server = await startRedisServer();
  const admin = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: 0 });
  try {
    await admin.config('SET', 'requirepass', password);
  } finally {
    admin.disconnect();
  }
  return server;
}
