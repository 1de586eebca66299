import { render, renderToString, type Instance } from 'ink';
import type { Snapshot } from '../domain/snapshot.js';
import { App } from './App.js';
import { AdminClient } from './client.js';
import { Dashboard } from './components/Dashboard.js';
import { SnapshotFeed } from './feed.js';
import { PANELS, type PanelName } from './layout.js';
import { ColorContext } from './theme.js';

export interface DashboardOptions {
  url: string;
  token?: string | undefined;
  stdin: NodeJS.ReadStream;
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  /** False under NO_COLOR. */
  color: boolean;
  /**
   * Aborting it quits like q (the command wires SIGTERM, SIGHUP and SIGINT to it), restoring the
   * terminal before the abort returns.
   */
  signal?: AbortSignal;
}

const ENTER_ALT_SCREEN = '\x1b[?1049h\x1b[H';
const LEAVE_ALT_SCREEN = '\x1b[?1049l';
const SHOW_CURSOR = '\x1b[?25h';
const CLEAR_SCREEN = '\x1b[2J\x1b[H';

/**
 * Runs the live dashboard until q, Ctrl-C or `signal`, on the alternate screen so the shell's
 * screen comes back as it was. Resolves to the exit code.
 */
export async function runDashboard(options: DashboardOptions): Promise<number> {
  // One controller for every request the dashboard makes: quitting ends the feed and any action
  // still waiting for the server at once, instead of keeping the process alive until they time out.
  const requests = new AbortController();
  const client = new AdminClient({ url: options.url, token: options.token, signal: requests.signal });
  const feed = new SnapshotFeed({ client });
  const { stdout } = options;
  let restored = false;
  const restore = () => {
    if (restored) return;
    restored = true;
    stdout.write(SHOW_CURSOR + LEAVE_ALT_SCREEN);
  };
  stdout.write(ENTER_ALT_SCREEN);
  // Ink redraws the old layout on a resize before React draws the new one; a frame taller or
  // wider than the new size scrolls the screen and leaves debris. Wipe it: the next frame starts clean.
  const wipe = () => stdout.write(CLEAR_SCREEN);
  let instance: Instance | null = null;
  const quit = () => {
    instance?.unmount();
    restore();
  };
  try {
    feed.start();
    instance = render(
      <ColorContext.Provider value={options.color}>
        <App feed={feed} actions={client} url={client.base} />
      </ColorContext.Provider>,
      { stdin: options.stdin, stdout, stderr: options.stderr, exitOnCtrlC: false, patchConsole: true, maxFps: 10 },
    );
    stdout.on('resize', wipe);
    options.signal?.addEventListener('abort', quit, { once: true });
    if (options.signal?.aborted) quit();
    await instance.waitUntilExit();
    return 0;
  } finally {
    options.signal?.removeEventListener('abort', quit);
    stdout.off('resize', wipe);
    requests.abort();
    instance?.cleanup();
    restore();
  }
}

/** One snapshot drawn as text (`top --once` without --json). */
export function renderSnapshot(snapshot: Snapshot, options: { url: string; columns: number; rows: number; color: boolean; now?: number }): string {
  const now = options.now ?? Date.now();
  // No selection marks, and the screen cut to what it shows (no key hints, no blank lines).
  const selected = Object.fromEntries(PANELS.map((p) => [p, -1])) as Record<PanelName, number>;
  const text = renderToString(
    <ColorContext.Provider value={options.color}>
      <Dashboard
        feed={{ snapshot, receivedAt: now, connection: { kind: 'live', via: 'poll', since: now } }}
        url={options.url}
        now={now}
        size={{ columns: options.columns, rows: options.rows }}
        focus={null}
        selected={selected}
        status={null}
        prompt={null}
        help={false}
      />
    </ColorContext.Provider>,
    { columns: options.columns },
  );
  const lines = text.split('\n');
  lines.pop();
  while (lines.length && lines[lines.length - 1]!.trim() === '') lines.pop();
  return lines.join('\n');
}
