import { constants } from 'node:os';
import { clean } from '../domain/text.js';
import { AdminClient } from '../tui/client.js';
import { loadDotEnv } from '../config/dotenv.js';

export interface TopFlags {
  url?: string;
  token?: string;
  once?: boolean;
  json?: boolean;
}

const DEFAULT_URL = 'http://127.0.0.1:8080';
/**
 * Quit like q, so the terminal is restored (Ctrl-C in the dashboard is a key, not SIGINT), then
 * exit 128 + the signal's number as a process killed by it would.
 */
const SIGNALS = ['SIGTERM', 'SIGHUP', 'SIGINT'] as const;

/**
 * `wcagai top`: a live dashboard of a running server (GET /admin/events). `--once` prints one
 * snapshot (`--json` for scripts) and needs no terminal. React and Ink load only for the live view.
 */
export async function runTop(flags: TopFlags): Promise<number> {
  loadDotEnv();
  const env = process.env;
  const url = flags.url ?? (env.WCAGAI_URL || DEFAULT_URL);
  const token = flags.token ?? (env.ADMIN_TOKEN || undefined);
  const color = !env.NO_COLOR && env.TERM !== 'dumb';
  if (!/^https?:\/\//i.test(url)) {
    process.stderr.write(`wcagai: --url must be an http(s) URL, got "${url}"\n`);
    return 1;
  }

  // --json alone means one JSON snapshot too: there is no live JSON view.
  if (flags.once || flags.json) {
    const client = new AdminClient({ url, token });
    let snapshot;
    try {
      snapshot = await client.snapshot();
    } catch (err) {
      // The server's problem detail: its text, never a terminal command.
      process.stderr.write(`wcagai: ${clean((err as Error).message)}\n`);
      return 1;
    }
    if (flags.json) {
      process.stdout.write(`${JSON.stringify(snapshot, null, 2)}\n`);
      return 0;
    }
    process.env.NODE_ENV ??= 'production';
    const { renderSnapshot } = await import('../tui/run.js');
    const tty = process.stdout.isTTY === true;
    process.stdout.write(`${renderSnapshot(snapshot, { url: client.base, columns: tty ? process.stdout.columns || 100 : 100, rows: tty ? Math.max(24, process.stdout.rows || 40) : 40, color: color && tty })}\n`);
    return 0;
  }

  if (!process.stdout.isTTY || !process.stdin.isTTY) {
    process.stderr.write('wcagai: top needs a terminal; use --once (with --json for scripts) to print one snapshot\n');
    return 1;
  }
  // React's development build is several times slower and records timings that pile up in memory.
  process.env.NODE_ENV ??= 'production';
  // Ink renders only a final frame when it believes it runs in CI (it reads CI at import time);
  // on a real terminal the dashboard must be live, whatever the environment says.
  delete process.env.CI;
  delete process.env.CONTINUOUS_INTEGRATION;
  const { runDashboard } = await import('../tui/run.js');
  const controller = new AbortController();
  let signalled: NodeJS.Signals | null = null;
  // `on`, not `once`: while a listener of ours is there, Ink's signal-exit does not re-raise the
  // signal (which would kill the process on the alternate screen before the cleanup ran). The
  // abort restores the screen synchronously; a second signal exits at once.
  const quit = (sig: NodeJS.Signals) => {
    if (signalled) process.exit(128 + constants.signals[signalled]);
    signalled = sig;
    controller.abort();
  };
  for (const sig of SIGNALS) process.on(sig, quit);
  try {
    const code = await runDashboard({ url, token, stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, color, signal: controller.signal });
    return signalled ? 128 + constants.signals[signalled] : code;
  } finally {
    for (const sig of SIGNALS) process.off(sig, quit);
  }
}
