import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { isAlive } from '../support/processes.js';
import { baseEnv, TEST_SETTINGS, waitFor, type LogEntry } from '../support/service.js';

const BIN = fileURLToPath(new URL('../../bin/wcagai', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** A `wcagai worker` child process and the JSON log lines it printed. */
export interface WorkerProcess {
  pid: number;
  child: ChildProcess;
  /** Parsed stdout lines, in order. */
  readonly logs: LogEntry[];
  /** Everything on stderr. */
  readonly stderr: string;
  /** Pids of the browsers it launched (from its browser.launch log lines). */
  readonly browserPids: number[];
  /** Resolves on exit with the code or the signal that ended it. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the first log line matching `match`. */
  waitForLog(match: (e: LogEntry) => boolean, timeoutMs?: number): Promise<LogEntry>;
  /** SIGTERM (an orderly shutdown), SIGKILL after `graceMs`; resolves once it has exited. */
  stop(graceMs?: number): Promise<void>;
}

const spawned = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of spawned) child.kill('SIGKILL');
});

/** Starts `node bin/wcagai worker` against `redisUrl` and `prefix`, with the test settings and `settings` on top. */
export function spawnWorker(redisUrl: string, prefix: string, settings: Record<string, string> = {}): WorkerProcess {
  const child = spawn(process.execPath, [BIN, 'worker'], {
    cwd: ROOT,
    env: { ...baseEnv(), ...TEST_SETTINGS, REDIS_URL: redisUrl, QUEUE_PREFIX: prefix, ...settings },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  spawned.add(child);
  const logs: LogEntry[] = [];
  const browserPids: number[] = [];
  let stderr = '';
  let partial = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.trim()) continue;
      try {
        const entry = JSON.parse(line) as LogEntry;
        logs.push(entry);
        if (entry.event === 'browser.launch' && typeof entry.browserPid === 'number') browserPids.push(entry.browserPid);
      } catch {
        logs.push({ level: 0, msg: line });
      }
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      spawned.delete(child);
      resolve({ code, signal });
    });
  });
  return {
    pid: child.pid!,
    child,
    logs,
    get stderr() {
      return stderr;
    },
    browserPids,
    exited,
    waitForLog: (match, timeoutMs = 30_000) => waitFor(() => logs.find(match), { timeoutMs, intervalMs: 50, what: `a log line of worker ${child.pid} (stderr: ${stderr.slice(-500)})` }),
    async stop(graceMs = 10_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * Waits until none of `pids` (browsers: process group leaders) is alive, SIGKILLs the groups still
 * there after `timeoutMs`, and returns the pids that had to be killed.
 */
export async function reap(pids: readonly number[], timeoutMs = 10_000): Promise<number[]> {
  const until = Date.now() + timeoutMs;
  while (pids.some(isAlive) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
  const left = pids.filter(isAlive);
  for (const pid of left) {
    for (const target of [-pid, pid]) {
      try {
        process.kill(target, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
  }
  return left;
}
