import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = fileURLToPath(new URL('../../bin/wcagai', import.meta.url));

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface RunOptions {
  env?: Record<string, string | undefined>;
  /** Extra node flags, placed before the script. */
  nodeArgs?: string[];
  timeoutMs?: number;
  /** Working directory (default the repository root): where a `.env` is read from. */
  cwd?: string;
}

/**
 * The environment a CLI run starts from: the caller's, minus the variables that change what
 * `wcagai scan` may reach or prints, so a developer's shell cannot flip a test's outcome.
 */
export function cliEnv(): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = { ...process.env };
  for (const name of ['ALLOW_PRIVATE_TARGETS', 'SCAN_ALLOWED_HOSTS', 'WCAGAI_DEBUG', 'FORCE_COLOR']) delete env[name];
  return env;
}

// Each scan starts a Chromium, whose launch is CPU-bound: more of them than cores at once makes
// every one slower (measured: 9 at once on 2 cores took ~30 s each, against ~3 s alone).
const MAX_RUNNING = Math.max(1, Math.min(4, availableParallelism()));
let running = 0;
const waiting: Array<() => void> = [];

/** Runs `work` when fewer than MAX_RUNNING CLI processes run (for a test that spawns one itself). */
export async function withSlot<T>(work: () => Promise<T>): Promise<T> {
  if (running >= MAX_RUNNING) await new Promise<void>((resolve) => waiting.push(resolve));
  else running++;
  try {
    return await work();
  } finally {
    // Hand the slot straight to the next waiter, or give it back.
    const next = waiting.shift();
    if (next) next();
    else running--;
  }
}

/** Runs `node bin/wcagai ...args` to completion (at most MAX_RUNNING at once) and collects its output and exit code. */
export function runCli(args: string[], options: RunOptions = {}): Promise<CliRun> {
  return withSlot(() => spawnCli(args, options));
}

function spawnCli(args: string[], options: RunOptions): Promise<CliRun> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...(options.nodeArgs ?? []), BIN, ...args], {
      cwd: options.cwd ?? ROOT,
      env: { ...cliEnv(), ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    // A hung CLI should fail its test with what it printed, not time the whole file out.
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: performance.now() - started });
    });
  });
}
