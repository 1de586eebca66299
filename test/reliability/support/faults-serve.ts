import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { baseEnv, TEST_SETTINGS, waitFor } from '../../support/service.js';
import { freePort } from '../../support/net.js';
export { freePort };

/**
 * The service's default scan deadlines. TEST_SETTINGS shortens them for quick failure tests; under
 * sustained load on a shared machine those would turn slowness into failed scans.
 */
export const DEFAULT_DEADLINES: Readonly<Record<string, string>> = Object.freeze({ SCAN_TIMEOUT: '60s', NAVIGATION_TIMEOUT: '30s', AXE_TIMEOUT: '30s' });

/** `bin/wcagai`, which runs dist/ (built by the global setup when src/ is newer). */
export const BIN = fileURLToPath(new URL('../../../bin/wcagai', import.meta.url));

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Date.now() when the process exited. */
  at: number;
}

/** One JSON log line of a `serve` process. */
export type ServeLine = Record<string, unknown> & { event?: string; msg?: string; level?: number; time?: number };

/** A real `wcagai serve` child process with its embedded worker. */
export interface ServeProcess {
  proc: ChildProcess;
  pid: number;
  /** `http://127.0.0.1:PORT`. */
  base: string;
  port: number;
  prefix: string;
  exited: Promise<Exit>;
  /** Everything it wrote (stdout and stderr), in order. */
  output(): string;
  /** Its JSON log lines, parsed. */
  lines(): ServeLine[];
  /** Lines whose `event` is `event`. */
  events(event: string): ServeLine[];
  /** Pid of the browser it launched most recently, if any. */
  browserPid(): number | undefined;
  /** SIGKILL, for cleanup after a failed test. */
  kill(): void;
}

// Children of this test process, killed when it exits even if a test fails before its cleanup.
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});


export interface ServeOptions {
  redisUrl: string;
  prefix: string;
  /** Settings on top of TEST_SETTINGS. */
  settings?: Record<string, string>;
  /** Port to listen on (a free one by default). */
  port?: number;
  readyTimeoutMs?: number;
}

/**
 * Starts `wcagai serve` (API plus embedded worker) as a child process and resolves once
 * /health/ready answers 200, i.e. Redis is reachable and the browser is up.
 */
export async function startServe(options: ServeOptions): Promise<ServeProcess> {
  const port = options.port ?? (await freePort());
  const env = { ...baseEnv(), ...TEST_SETTINGS, ...options.settings, REDIS_URL: options.redisUrl, QUEUE_PREFIX: options.prefix, PORT: String(port), HOST: '127.0.0.1' };
  const proc = spawn(process.execPath, [BIN, 'serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(proc);
  // Output is kept in chunks and parsed on demand: a soak writes tens of thousands of lines.
  const chunks: string[] = [];
  const keep = (chunk: Buffer) => {
    chunks.push(chunk.toString('utf8'));
  };
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  const exited = new Promise<Exit>((resolve) =>
    proc.once('exit', (code, signal) => {
      running.delete(proc);
      resolve({ code, signal, at: Date.now() });
    }),
  );
  const output = () => chunks.join('');
  let parsedUpTo = 0;
  let tail = '';
  const parsed: ServeLine[] = [];
  const lines = () => {
    for (; parsedUpTo < chunks.length; parsedUpTo++) {
      const text = tail + chunks[parsedUpTo]!;
      const parts = text.split('\n');
      tail = parts.pop() ?? '';
      for (const line of parts) {
        if (!line.startsWith('{')) continue;
        try {
          parsed.push(JSON.parse(line) as ServeLine);
        } catch {
          // a line that only looks like JSON: not a log line
        }
      }
    }
    return parsed;
  };
  const base = `http://127.0.0.1:${port}`;
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  await waitFor(
    async () => {
      if (gone) throw new Error(`serve exited before it was ready:\n${output().slice(-3_000)}`);
      const res = await fetch(`${base}/health/ready`, { signal: AbortSignal.timeout(5_000) });
      return res.ok;
    },
    { timeoutMs: options.readyTimeoutMs ?? 120_000, intervalMs: 250, what: `serve on ${base} to be ready` },
  ).catch((err: Error) => {
    proc.kill('SIGKILL');
    throw new Error(`${err.message}\n${output().slice(-3_000)}`);
  });
  return {
    proc,
    pid: proc.pid!,
    base,
    port,
    prefix: options.prefix,
    exited,
    output,
    lines,
    events: (event) => lines().filter((l) => l.event === event),
    browserPid: () => lines().findLast((l) => l.event === 'browser.launch')?.browserPid as number | undefined,
    kill: () => {
      if (!gone) proc.kill('SIGKILL');
    },
  };
}

/** Log lines at error level or above (pino: 50 error, 60 fatal). */
export function errorLines(server: ServeProcess): ServeLine[] {
  return server.lines().filter((l) => (l.level ?? 0) >= 50);
}
