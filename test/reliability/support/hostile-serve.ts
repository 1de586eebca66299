import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { baseEnv, TEST_SETTINGS, uniquePrefix, waitFor } from '../../support/service.js';
import { freePort } from '../../support/net.js';
export { freePort };

const BIN = fileURLToPath(new URL('../../../bin/wcagai', import.meta.url));

/** A `wcagai serve` child process listening on loopback, as operators run it. */
export interface ServeProcess {
  pid: number;
  /** `http://127.0.0.1:PORT`. */
  base: string;
  port: number;
  /** Everything the process wrote on stdout and stderr so far (the last 4 MB). */
  output(): string;
  /** Parsed JSON log lines from stdout (lines that are not JSON are skipped). */
  logLines(): Array<Record<string, unknown>>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code. */
  stop(graceMs?: number): Promise<number | null>;
}

export interface ServeOptions {
  redisUrl: string;
  /** Environment on top of TEST_SETTINGS (a QUEUE_PREFIX and PORT are chosen unless given). */
  env?: Record<string, string>;
  /** `serve` flags, e.g. ['--no-worker'] (the default) or ['--workers', '1']. */
  args?: string[];
  readyTimeoutMs?: number;
}


/** Starts `node bin/wcagai serve` with the test settings and waits for /health/live. */
export async function startServe(options: ServeOptions): Promise<ServeProcess> {
  const port = options.env?.PORT ? Number(options.env.PORT) : await freePort();
  const env = { ...baseEnv(), ...TEST_SETTINGS, QUEUE_PREFIX: uniquePrefix('hostile'), ...options.env, REDIS_URL: options.redisUrl, PORT: String(port) };
  const proc: ChildProcess = spawn(process.execPath, [BIN, 'serve', ...(options.args ?? ['--no-worker'])], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (chunk: Buffer) => {
    output += chunk.toString('utf8');
    if (output.length > 8_000_000) output = output.slice(-4_000_000);
  };
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const base = `http://127.0.0.1:${port}`;
  try {
    await waitFor(
      async () => {
        if (proc.exitCode !== null) throw new Error(`serve exited with ${proc.exitCode}`);
        return (await fetch(`${base}/health/live`)).ok;
      },
      { timeoutMs: options.readyTimeoutMs ?? 60_000, intervalMs: 100, what: 'serve to listen' },
    );
  } catch (err) {
    proc.kill('SIGKILL');
    throw new Error(`${(err as Error).message}\n${output.slice(-4_000)}`);
  }
  return {
    pid: proc.pid!,
    base,
    port,
    output: () => output,
    logLines: () =>
      output.split('\n').flatMap((line) => {
        if (!line.startsWith('{')) return [];
        try {
          return [JSON.parse(line) as Record<string, unknown>];
        } catch {
          return [];
        }
      }),
    async stop(graceMs = 10_000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}
