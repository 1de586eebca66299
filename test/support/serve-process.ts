import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort } from './net.js';
import { baseEnv, waitFor } from './service.js';

const BIN = fileURLToPath(new URL('../../bin/wcagai', import.meta.url));

/** A `wcagai serve` child process on a free loopback port, its stdout and stderr kept. */
export interface ServeProcess {
  proc: ChildProcess;
  pid: number;
  base: string;
  exited: Promise<void>;
  /** Everything it wrote to stdout and stderr so far. */
  output(): string;
  /** Its JSON log lines whose `event` is `event`. */
  events(event: string): Array<Record<string, unknown>>;
  /** SIGTERM (or `signal`), SIGKILL after 10 s without an exit; resolves once it exited. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Starts `wcagai serve` with `args` (default `--no-worker`) and `env` over the browser-finding
 * base environment, and waits until `/health/ready` answers 200.
 */
export async function startServeProcess(env: Record<string, string>, args: readonly string[] = ['--no-worker']): Promise<ServeProcess> {
  const port = await freePort();
  const proc = spawn(process.execPath, [BIN, 'serve', ...args], { env: { ...baseEnv(), ...env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  proc.stdout!.on('data', (c: Buffer) => (output += c.toString('utf8')));
  proc.stderr!.on('data', (c: Buffer) => (output += c.toString('utf8')));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const base = `http://127.0.0.1:${port}`;
  const serve: ServeProcess = {
    proc,
    pid: proc.pid!,
    base,
    exited,
    output: () => output,
    events: (event) =>
      output
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .filter((l) => l.event === event),
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
    },
  };
  try {
    await waitFor(async () => (await fetch(`${base}/health/ready`).catch(() => null))?.ok, { timeoutMs: 30_000, intervalMs: 100, what: 'serve to be ready' });
  } catch (err) {
    await serve.stop();
    // What it wrote by the time it gave up (the message above was made before it wrote anything).
    throw new Error(`${(err as Error).message}\n${output}`, { cause: err });
  }
  return serve;
}
