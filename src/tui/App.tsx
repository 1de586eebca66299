import { useApp, useInput, useStdout } from 'ink';
import { useEffect, useRef, useState } from 'react';
import type { ActionResult } from './client.js';
import { Dashboard } from './components/Dashboard.js';
import type { StatusMessage } from './components/Footer.js';
import type { FeedState } from './feed.js';
import { safe } from './format.js';
import { PANELS, type PanelName, type Size } from './layout.js';
import { keysOf, move, resolveIndex, type Selection } from './selection.js';

/** Where the snapshots come from (SnapshotFeed, or a stand-in in tests). */
export interface FeedSource {
  readonly current: FeedState;
  subscribe(listener: (state: FeedState) => void): () => void;
}

/** The admin API actions (AdminClient, or a stand-in in tests). */
export interface Actions {
  retryDlq(id: string): Promise<ActionResult>;
  retryDlqMany(ids: readonly string[]): Promise<ActionResult>;
  resetBreaker(name: string): Promise<ActionResult>;
  setPaused(paused: boolean): Promise<ActionResult>;
}

export interface AppProps {
  feed: FeedSource;
  actions: Actions;
  url: string;
  /** A fixed size (tests); else the terminal's, following resizes. */
  size?: Size;
  clock?: () => number;
  /** Repaint interval for ages and countdowns while no snapshot arrives (default 1 s). */
  tickMs?: number;
}

function useFeed(feed: FeedSource): FeedState {
  const [state, setState] = useState(feed.current);
  useEffect(() => {
    setState(feed.current);
    return feed.subscribe(setState);
  }, [feed]);
  return state;
}

function useTerminalSize(fixed: Size | undefined): Size {
  const { stdout } = useStdout();
  const read = (): Size => ({ columns: stdout.columns || 80, rows: stdout.rows || 24 });
  const [size, setSize] = useState(read);
  useEffect(() => {
    if (fixed) return;
    const onResize = () => setSize(read());
    stdout.on('resize', onResize);
    return () => {
      stdout.off('resize', onResize);
    };
  }, [stdout, fixed]);
  return fixed ?? size;
}

/**
 * The clock, repainted every `tickMs` only once no snapshot has arrived for a while: a live
 * stream repaints every second already, and a timer of its own would double the renders
 * (the server's schedule starts when we connect, so the two would stay in step).
 */
function useNow(clock: () => number, tickMs: number, lastChange: number | null): number {
  const [now, setNow] = useState(clock);
  useEffect(() => {
    let timer: NodeJS.Timeout;
    const tick = () => {
      setNow(clock());
      timer = setTimeout(tick, tickMs);
    };
    timer = setTimeout(tick, tickMs * 1.5);
    return () => clearTimeout(timer);
  }, [clock, tickMs, lastChange]);
  return Math.max(now, lastChange ?? 0);
}

interface Pending {
  prompt: string;
  run(): Promise<ActionResult>;
}

/** `wcagai top`: the dashboard with its keys; all state lives here, the components only draw. */
export function App({ feed, actions, url, size: fixedSize, clock = Date.now, tickMs = 1_000 }: AppProps) {
  const { exit } = useApp();
  const state = useFeed(feed);
  const size = useTerminalSize(fixedSize);
  const now = useNow(clock, tickMs, state.receivedAt);
  const [focus, setFocus] = useState<PanelName>('dlq');
  const [selection, setSelection] = useState<Record<PanelName, Selection>>(() => Object.fromEntries(PANELS.map((p) => [p, { key: null, index: 0 }])) as Record<PanelName, Selection>);
  const [help, setHelp] = useState(false);
  const [status, setStatus] = useState<StatusMessage | null>(null);
  const [pending, setPending] = useState<Pending | null>(null);
  const [busy, setBusy] = useState(false);

  const snapshot = state.snapshot;
  const selected = Object.fromEntries(PANELS.map((p) => [p, resolveIndex(keysOf(snapshot, p), selection[p])])) as Record<PanelName, number>;

  // Each panel's selection follows the highlighted item's key from the first snapshot on (and
  // the next item's once it is gone): a new DLQ entry on top then leaves the cursor on its entry.
  useEffect(() => {
    setSelection((s) => {
      let next = s;
      for (const p of PANELS) {
        const keys = keysOf(snapshot, p);
        const index = resolveIndex(keys, s[p]);
        if (keys.length && s[p].key !== keys[index]) next = { ...next, [p]: { key: keys[index]!, index } };
      }
      return next;
    });
  }, [snapshot]);

  // Ink re-subscribes the input handler in an effect that may run after the next key arrives, so
  // the handler reads the latest render's state through a ref, never from its own closure.
  const latest = useRef({ pending, help, focus, busy, snapshot, selected });
  latest.current = { pending, help, focus, busy, snapshot, selected };

  const ask = (prompt: string, run: () => Promise<ActionResult>) => {
    if (latest.current.busy) {
      setStatus({ text: 'an action is still running…', tone: 'info' });
      return;
    }
    latest.current.pending = { prompt, run };
    setPending({ prompt, run });
  };

  const perform = (p: Pending) => {
    latest.current.pending = null;
    latest.current.busy = true;
    setPending(null);
    setBusy(true);
    setStatus({ text: `${p.prompt.replace(/\?$/, '')}…`, tone: 'info' });
    p.run()
      .then((r) => setStatus({ text: r.message, tone: r.ok ? 'ok' : 'error' }))
      .catch((err: unknown) => setStatus({ text: String((err as Error)?.message ?? err), tone: 'error' }))
      .finally(() => setBusy(false));
  };

  useInput((input, key) => {
    const { pending, help, focus, snapshot, selected } = latest.current;
    if (key.ctrl && input === 'c') return exit();
    if (pending) {
      if (input === 'y' || input === 'Y') perform(pending);
      else if (input === 'n' || input === 'N' || key.escape) {
        latest.current.pending = null;
        setPending(null);
        setStatus({ text: 'cancelled', tone: 'info' });
      }
      return;
    }
    if (input === 'q') return exit();
    if (input === '?') {
      latest.current.help = !help;
      return setHelp(!help);
    }
    if (help) {
      if (key.escape) {
        latest.current.help = false;
        setHelp(false);
      }
      return;
    }
    if (key.tab) {
      const i = PANELS.indexOf(focus);
      const next = PANELS[(i + (key.shift ? PANELS.length - 1 : 1)) % PANELS.length]!;
      latest.current.focus = next;
      return setFocus(next);
    }
    const step = key.upArrow || input === 'k' ? -1 : key.downArrow || input === 'j' ? 1 : key.pageUp ? -10 : key.pageDown ? 10 : input === 'g' || key.home ? -Infinity : input === 'G' || key.end ? Infinity : 0;
    if (step !== 0) {
      const keys = keysOf(snapshot, focus);
      setSelection((s) => {
        const next = move(keys, s[focus], step);
        latest.current.selected = { ...latest.current.selected, [focus]: next.index };
        return { ...s, [focus]: next };
      });
      return;
    }
    if (input === 'r' || input === 'R') {
      const entries = snapshot?.dlq?.newest ?? [];
      if (focus !== 'dlq') return setStatus({ text: 'r and R act on the DLQ panel: press Tab to focus it', tone: 'info' });
      if (entries.length === 0) return setStatus({ text: 'the DLQ shows no entry to retry', tone: 'info' });
      if (input === 'r') {
        const e = entries[Math.min(selected.dlq, entries.length - 1)]!;
        return ask(`Retry DLQ entry ${safe(e.id)} (${safe(e.host)}, ${safe(e.code)})?`, () => actions.retryDlq(e.id));
      }
      const ids = entries.map((e) => e.id);
      return ask(`Retry all ${ids.length} DLQ entries shown${snapshot?.dlq && snapshot.dlq.size > ids.length ? ` (of ${snapshot.dlq.size})` : ''}?`, () => actions.retryDlqMany(ids));
    }
    if (input === 'x') {
      const b = snapshot?.breakers?.[selected.breakers];
      if (focus !== 'breakers' || !b) return setStatus({ text: 'x resets the breaker selected in the Breakers panel: press Tab to focus it', tone: 'info' });
      return ask(`Reset breaker ${safe(b.name)} fleet-wide (now ${safe(b.state)}, ${safe(b.failures)} failures)?`, () => actions.resetBreaker(b.name));
    }
    if (input === 'p') {
      const paused = snapshot?.queue?.paused;
      if (paused === undefined) return setStatus({ text: 'the queue state is unknown: no snapshot yet', tone: 'info' });
      return ask(paused ? 'Resume the queue?' : 'Pause the queue (workers finish their scans, take no new ones)?', () => actions.setPaused(!paused));
    }
  });

  return (
    <Dashboard
      feed={state}
      url={url}
      now={now}
      size={size}
      focus={focus}
      selected={selected}
      status={status}
      prompt={pending?.prompt ?? null}
      help={help}
    />
  );
}
