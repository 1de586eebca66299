import { AdminClient } from '../tui/client.js';
import { loadDotEnv } from '../config/dotenv.js';

export interface TopFlags {
  url?: string;
  token?: string;
  once?: boolean;
  json?: boolean;
}

const DEFAULT_URL = 'http://127.0.0.1:8080';
/** Quit like q, so the terminal is restored (Ctrl-C in the dashboard is a key, not SIGINT). */
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
      process.stderr.write(`wcagai: ${(err as Error).message}\n`);
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
  const quit = () => controller.abort();
  for (const sig of SIGNALS) process.once(sig, quit);
  try {
    return await runDashboard({ url, token, stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, color, signal: controller.signal });
  } finally {
    for (const sig of SIGNALS) process.off(sig, quit);
  }
}
