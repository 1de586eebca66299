import { renderToString } from 'ink';
import stringWidth from 'string-width';
import { render } from 'ink-testing-library';
import { describe, expect, it } from 'vitest';
import type { Snapshot } from '../../src/domain/snapshot.js';
import { Dashboard, type DashboardProps } from '../../src/tui/components/Dashboard.js';
import { Header } from '../../src/tui/components/Header.js';
import type { FeedState } from '../../src/tui/feed.js';
import { allocateRows, PANELS, type PanelName } from '../../src/tui/layout.js';
import { waitFor } from '../support/service.js';
import { breakerOpenSnapshot, dlqSnapshot, healthySnapshot, iso, NOW, worker } from './fixtures.js';

/**
 * The components are pure functions of a snapshot: each case renders the dashboard from a
 * fixture (ink-testing-library's fake terminal, 100 columns; wider layouts through Ink's
 * renderToString, which takes a width) and reads the visible text.
 */

const URL = 'http://127.0.0.1:8080';
const none = Object.fromEntries(PANELS.map((p) => [p, 0])) as Record<PanelName, number>;
const live = (snapshot: Snapshot | null): FeedState => ({ snapshot, receivedAt: NOW - 1_000, connection: { kind: 'live', via: 'stream', since: NOW - 60_000 } });

function props(feed: FeedState, over: Partial<DashboardProps> = {}): DashboardProps {
  return { feed, url: URL, now: NOW, size: { columns: 80, rows: 24 }, focus: 'dlq', selected: none, status: null, prompt: null, help: false, ...over };
}

/** Renders in ink-testing-library's terminal and returns the frame's lines. */
function frame(p: DashboardProps): string[] {
  const { lastFrame, unmount } = render(<Dashboard {...p} />);
  const text = lastFrame() ?? '';
  unmount();
  return text.split('\n');
}

/** Renders at any width (Ink's renderToString). */
function wideFrame(p: DashboardProps): string[] {
  return renderToString(<Dashboard {...p} />, { columns: p.size.columns }).split('\n');
}

describe('dashboard at 80x24', () => {
  it('healthy: status, version, uptime, URL, update age; queue figures, sparkline and p95; every breaker closed', () => {
    const lines = frame(props(live(healthySnapshot())));
    const text = lines.join('\n');
    // The frame fills the terminal but one line, and no line is wider than 80 columns.
    expect(lines).toHaveLength(23);
    expect(Math.max(...lines.map((l) => l.length))).toBeLessThanOrEqual(80);
    expect(lines[0]).toContain('● HEALTHY');
    expect(lines[0]).toContain('v0.1.0');
    expect(lines[0]).toContain('up 2h05m');
    expect(lines[0]).toContain(URL);
    expect(lines[0]).toContain('updated 1s ago');
    expect(lines[1]).toContain('live (stream) · 2 workers · DLQ 0 · no alerts');
    expect(text).toMatch(/QUEUE waiting 12 {2}active 5 {2}delayed 1 {2}failed 3 {2}completed 1,234/);
    expect(text).toMatch(/util [█░]{10} +1\.7%/);
    expect(text).toMatch(/scans\/min +[▁▂▃▄▅▆▇█]+ 29\/min {2}p95 4\.2s/);
    expect(text).toContain('BREAKERS 5 services · all closed');
    expect(text).toMatch(/ai +CLOSED +0 fail/);
    expect(text).toContain('DLQ 0 entries');
    expect(text).toContain('empty: no scan failed for good');
    expect(text).toContain('ALERTS none firing');
    expect(lines[22]).toContain('Tab focus');
  });

  it('breaker open: OPEN and ISOLATED with failures and opened at, per-process states when they differ, the alert firing', () => {
    const text = frame(props(live(breakerOpenSnapshot()), { focus: 'breakers' })).join('\n');
    expect(text).toContain('● DEGRADED');
    expect(text).toContain('BREAKERS 5 services · 2 not closed');
    expect(text).toMatch(/apollo +OPEN +5 fail {2}opened \d\d:\d\d:\d\d \(1m ago\)/);
    expect(text).toMatch(/hubspot +ISOLATED/);
    expect(text).toContain('per process: api-1 OPEN(5), worker-host-1:1001 CLOSED(1)');
    expect(text).toMatch(/CRITICAL +circuit breaker apollo is OPEN/);
    expect(text).toContain('1 alert firing');
    expect(text).toContain('x reset');
  });

  it('a silenced alert: still listed firing, with until when it is silenced', () => {
    const s = breakerOpenSnapshot();
    s.alerts = [{ ...s.alerts![0]!, silencedUntil: new Date(NOW + 3_600_000).toISOString() }];
    const text = frame(props(live(s), { focus: 'alerts' })).join('\n');
    // At 80 columns the summary gives way to the silence.
    expect(text).toMatch(/CRITICAL +circuit breaker\S* +since \d\d:\d\d:\d\d \(1m\) +silenced until \d\d:\d\d:\d\d/);
    expect(text).toContain('1 alert firing');
  });

  it('server down: keeps the last snapshot and says since when it is disconnected and when it retries', () => {
    const feed: FeedState = { snapshot: healthySnapshot(), receivedAt: NOW - 42_000, connection: { kind: 'down', since: NOW - 40_000, reason: 'ECONNREFUSED', retryAt: NOW + 3_000, attempts: 4 } };
    const lines = frame(props(feed));
    expect(lines[0]).toContain('updated 42s ago');
    expect(lines[1]).toMatch(/✖ disconnected since \d\d:\d\d:\d\d \(ECONNREFUSED\), retrying in 3s/);
    // The panels still show the last figures.
    expect(lines.join('\n')).toContain('QUEUE waiting 12');
  });

  it('unauthorized, before any snapshot: says so and what to check', () => {
    const feed: FeedState = { snapshot: null, receivedAt: null, connection: { kind: 'unauthorized', since: NOW - 5_000, reason: 'admin routes need Authorization: Bearer <ADMIN_TOKEN>', retryAt: NOW + 8_000 } };
    const lines = frame(props(feed));
    expect(lines[0]).toContain('○ UNKNOWN');
    expect(lines[0]).toContain('no data yet');
    expect(lines[1]).toContain('✖ unauthorized: check --token / ADMIN_TOKEN');
    expect(lines.join('\n')).toContain(`waiting for the first snapshot from ${URL}`);
  });

  it('an empty DLQ and a 1,000-entry DLQ (50 newest shown, a window around the selection)', () => {
    expect(frame(props(live(dlqSnapshot(0)))).join('\n')).toContain('empty: no scan failed for good');
    const big = frame(props(live(dlqSnapshot(1_000)), { selected: { ...none, dlq: 30 } })).join('\n');
    expect(big).toContain('DLQ 1,000 entries · 60 in the last hour');
    expect(big).toMatch(/ · \d+-\d+ of 50 newest/);
    // The selected entry is in view and marked; the first ones scrolled away.
    expect(big).toMatch(/› dlq_entry00030 +site-2\.example +NAVIGATION_TIMEOUT +31m/);
    expect(big).not.toContain('dlq_entry00000');
    expect(big).toContain('r retry · R retry shown');
    // All 1,000 in the snapshot: still only a window of rows is drawn, around the last one.
    const all = frame(props(live(dlqSnapshot(1_000, 1_000)), { selected: { ...none, dlq: 999 } }));
    expect(all.join('\n')).toMatch(/ · \d+-1000 of 1000 newest/);
    expect(all.join('\n')).toContain('› dlq_entry00999');
    expect(all).toHaveLength(23);
  });

  it('10 workers: id, host, active/concurrency, scans done, restarts, RSS, heartbeat age; a stale one marked', () => {
    const workers = Array.from({ length: 10 }, (_, i) => worker(i + 1, i === 9 ? { stale: true, heartbeatAgeMs: 31_000 } : {}));
    const text = frame(props(live(healthySnapshot({ workers })), { focus: 'workers', selected: { ...none, workers: 9 } })).join('\n');
    expect(text).toContain('WORKERS 10 live · 10/40 busy · 1 stale');
    expect(text).toMatch(/WORKER +HOST +ACTIVE +DONE +RESTARTS +RSS +BEAT/);
    expect(text).toMatch(/worker-host-9-1009-~ scan-node-9 +0\/4 +900 +0 +390M +2s/);
    expect(text).toMatch(/› worker-host-10-1010~ scan-node-10 +1\/4 +1,000 +0 +400M +31s STALE/);
    // Scrolled to keep the selection in view.
    expect(text).toMatch(/ · \d+-10 of 10/);
  });

  it('API processes (from health.apiProcesses): listed after the workers marked api with their RSS, counted apart from the workers, marked in per-process breakers', () => {
    const apiId = 'api-node-1-2001-d4e5f6';
    const s = breakerOpenSnapshot();
    s.breakers = s.breakers!.map((b) => (b.name === 'apollo' ? { ...b, processes: [{ ...b.processes[0]!, process: apiId }, b.processes[1]!] } : b));
    s.health = { ...s.health, apiProcesses: [{ id: apiId, role: 'api', host: 'api-node-1', pid: 2001, memory: { rss: 210 * 2 ** 20, heapUsed: 80 * 2 ** 20 }, startedAt: iso(7_200_000), at: iso(3_000) }] };
    const text = frame(props(live(s), { focus: 'workers', size: { columns: 100, rows: 40 } })).join('\n');
    expect(text).toContain('live (stream) · 2 workers · 1 API');
    expect(text).toContain('WORKERS 2 live · 3/8 busy · 1 API process');
    expect(text).toMatch(/api-node-1-2001-d4e~ api-node-1 +api +- +- +210M +3s/);
    expect(text).toContain('per process: api-node-1:2001 (api) OPEN(5), worker-host-1:1001 CLOSED(1)');

    // Only API processes: still no live worker.
    const alone = frame(props(live({ ...s, workers: [] }), { focus: 'workers', size: { columns: 100, rows: 40 } })).join('\n');
    expect(alone).toContain('live (stream) · 0 workers · 1 API');
    expect(alone).toContain('no live workers: nothing is scanning');
    expect(alone).toMatch(/api-node-1-2001-d4e~ api-node-1 +api /);
  });

  it('no live worker, no queue figures, no DLQ and no alerting: each panel says so instead of failing', () => {
    const s = healthySnapshot({ workers: [], queue: null });
    delete s.dlq;
    delete s.alerts;
    delete s.breakers;
    const text = frame(props(live(s))).join('\n');
    expect(text).toContain('no live workers: nothing is scanning');
    expect(text).toContain('queue figures unavailable');
    expect(text).toContain('no DLQ on this server');
    expect(text).toContain('alerting is off on this server');
    expect(text).toContain('no breaker figures from this server');
  });

  it('help, a confirmation prompt and an action result', () => {
    expect(frame(props(live(healthySnapshot()), { help: true })).join('\n')).toMatch(/R +DLQ: retry every entry shown \(asks y\/n\)/);
    expect(frame(props(live(healthySnapshot()), { prompt: 'Pause the queue?' }))[21]).toBe('Pause the queue? (y/n)');
    expect(frame(props(live(healthySnapshot()), { status: { text: 'NOT_FOUND: no DLQ entry with id dlq_x', tone: 'error' } }))[21]).toBe('NOT_FOUND: no DLQ entry with id dlq_x');
  });

  it('a terminal smaller than 80x24 gets a message instead of a broken layout', () => {
    const lines = frame(props(live(healthySnapshot()), { size: { columns: 70, rows: 20 } }));
    expect(lines[0]).toBe('wcagai top needs a 80x24 terminal; this one is 70x20.');
  });
});

describe('dashboard on wide terminals', () => {
  it('150x40: one column, more per row (pid, uptime, browser; DLQ status and URL; last breaker failure)', () => {
    const s = breakerOpenSnapshot();
    s.dlq = dlqSnapshot(3).dlq!;
    const lines = wideFrame(props(live(s), { size: { columns: 150, rows: 40 } }));
    const text = lines.join('\n');
    expect(lines).toHaveLength(39);
    expect(text).toMatch(/PID +UP BROWSER/);
    expect(text).toMatch(/worker-host-1-1001-a1b2c3 +scan-node-1 .* 1001 +1h00m up/);
    expect(text).toMatch(/STATUS +URL/);
    expect(text).toContain('https://site-0.example/page/0');
    expect(text).toContain('last: HTTP_SERVER_ERROR: apollo answered 503');
  });

  it('220x50: two columns, queue/breakers/alerts beside workers/DLQ', () => {
    const lines = wideFrame(props(live(dlqSnapshot(1_000)), { size: { columns: 220, rows: 50 } }));
    const row = lines.find((l) => l.includes('QUEUE'))!;
    expect(row).toMatch(/QUEUE .* WORKERS 2 live/);
    expect(lines.find((l) => l.includes('BREAKERS'))).toBeDefined();
    expect(lines.some((l) => /dlq_entry00000 .*https:\/\/site-0\.example\/page\/0/.test(l))).toBe(true);
    expect(Math.max(...lines.map((l) => l.length))).toBeLessThanOrEqual(220);
  });
});

describe('header alone', () => {
  it('connecting', () => {
    const { lastFrame } = render(<Header snapshot={null} connection={{ kind: 'connecting', since: NOW }} receivedAt={null} url={URL} now={NOW} width={80} />);
    expect(lastFrame()).toContain(`connecting to ${URL}…`);
  });

  it('polling fallback and a paused queue', () => {
    const s = healthySnapshot();
    s.queue!.paused = true;
    const { lastFrame } = render(<Header snapshot={s} connection={{ kind: 'live', via: 'poll', since: NOW }} receivedAt={NOW} url={URL} now={NOW} width={100} />);
    expect(lastFrame()).toContain('live (polling)');
    expect(lastFrame()).toContain('QUEUE PAUSED');
  });
});

describe('row allocation', () => {
  it('gives every panel its minimum at 80x24 and the focused list more', () => {
    const snapshot = dlqSnapshot(1_000);
    const panels = ['queue', 'breakers', 'workers', 'dlq', 'alerts'] as const;
    const dlqFocused = allocateRows(19, panels, snapshot, 'dlq');
    expect(Object.values(dlqFocused).reduce((a, b) => a + b, 0)).toBe(19);
    for (const p of panels) expect(dlqFocused[p]).toBeGreaterThanOrEqual(p === 'queue' ? 2 : p === 'workers' || p === 'dlq' ? 3 : 2);
    const breakersFocused = allocateRows(19, panels, snapshot, 'breakers');
    expect(dlqFocused.dlq).toBeGreaterThan(breakersFocused.dlq);
    expect(breakersFocused.breakers).toBeGreaterThan(dlqFocused.breakers);
    // Since ages are in the fixture relative to NOW.
    expect(iso(0)).toBe(new Date(NOW).toISOString());
  });
});

describe('the clock while disconnected', () => {
  it('repaints ages and the retry countdown on its own once snapshots stop', async () => {
    const { App } = await import('../../src/tui/App.js');
    let now = NOW;
    const feed = { current: { snapshot: healthySnapshot(), receivedAt: NOW, connection: { kind: 'down' as const, since: NOW, reason: 'ECONNREFUSED', retryAt: NOW + 10_000, attempts: 1 } }, subscribe: () => () => undefined };
    const actions = { retryDlq: async () => ({ ok: true, message: '' }), retryDlqMany: async () => ({ ok: true, message: '' }), resetBreaker: async () => ({ ok: true, message: '' }), setPaused: async () => ({ ok: true, message: '' }) };
    const ui = render(<App feed={feed} actions={actions} url={URL} size={{ columns: 80, rows: 24 }} clock={() => (now += 1_000)} tickMs={100} />);
    await waitFor(() => /updated [3-9]s ago/.test(ui.lastFrame() ?? ''), { what: 'the age to move', timeoutMs: 5_000, intervalMs: 20 });
    expect(ui.lastFrame()).toMatch(/retrying in [1-7]s/);
    ui.unmount();
  });
});

describe('text from the server is never a terminal command', () => {
  // A title change, a clipboard write (OSC 52), a screen wipe and a C1 CSI: what an upstream's
  // answer quoted in a breaker's last failure, a page's URL or an alert could carry.
  const EVIL = '\x1b]0;PWNED\x07\x1b]52;c;ZXZpbA==\x07\x1b[2J\x1b[1;1H\x9b31m\r\n';
  const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;
  /** Every string of `value` with EVIL in the middle of it. */
  const taint = <T,>(value: T): T => {
    if (typeof value === 'string') return `${value.slice(0, 4)}${EVIL}${value.slice(4)}` as T;
    if (Array.isArray(value)) return value.map(taint) as T;
    if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, taint(v)])) as T;
    return value;
  };
  const evilSnapshot = () => {
    const s = breakerOpenSnapshot();
    s.dlq = dlqSnapshot(3).dlq!;
    s.alerts!.push({ id: 'x', rule: 'R', severity: 'warning', summary: 'slack said no', since: iso(1_000), silencedUntil: iso(-60_000) });
    return taint(s);
  };

  it('every string of a snapshot, the status line, a prompt and the connection lose their control characters, at every width', () => {
    const snapshot = evilSnapshot();
    const feeds: FeedState[] = [live(snapshot), { snapshot, receivedAt: NOW, connection: { kind: 'down', since: NOW, reason: `ECONNRESET${EVIL}`, retryAt: NOW + 1_000, attempts: 2 } }, { snapshot: null, receivedAt: null, connection: { kind: 'unauthorized', since: NOW, reason: `bad${EVIL}`, retryAt: NOW + 1_000 } }];
    for (const feed of feeds) {
      for (const focus of PANELS) {
        const status = { text: `UPSTREAM_REJECTED: ${EVIL}no`, tone: 'error' as const };
        const variants = [props(feed, { focus, status }), props(feed, { focus, prompt: `Retry DLQ entry ${EVIL}?`, url: `http://x${EVIL}` })];
        for (const p of variants) {
          for (const lines of [frame(p), wideFrame({ ...p, size: { columns: 150, rows: 40 } }), wideFrame({ ...p, size: { columns: 220, rows: 50 } })]) {
            const text = lines.join('\n');
            expect(text, JSON.stringify(text)).not.toMatch(CONTROL);
          }
        }
      }
    }
    // The text itself is still there, minus the control characters.
    expect(wideFrame(props(live(snapshot), { size: { columns: 150, rows: 40 } })).join('\n')).toContain('last: HTTP]0;PWNED]52;c;ZXZpbA==[2J[1;1H31m _SERVER_ERROR');
  });

  it('top --once: the printed snapshot carries no control character either', async () => {
    const { renderSnapshot } = await import('../../src/tui/run.js');
    for (const columns of [80, 150, 220]) {
      const text = renderSnapshot(evilSnapshot(), { url: URL, columns, rows: 50, color: false, now: NOW });
      expect(text).toContain('DLQ 3 entries');
      expect(text, JSON.stringify(text)).not.toMatch(CONTROL);
    }
  });
});

describe('breakers that differ between processes', () => {
  it('100x24, all five OPEN on one process and CLOSED on another: the selected breaker is on screen wherever it is', () => {
    const s = dlqSnapshot(500);
    s.workers = Array.from({ length: 8 }, (_, i) => worker(i + 1));
    s.alerts = Array.from({ length: 4 }, (_, i) => ({ id: `a${i}`, rule: 'R', severity: 'error' as const, summary: `alert ${i}`, since: iso(1_000) }));
    const open = breakerOpenSnapshot().breakers!.find((b) => b.name === 'apollo')!;
    const names = ['ai', 'apollo', 'hubspot', 'slack', 'pagerduty'];
    s.breakers = names.map((name) => ({ ...open, name }));
    for (const [i, name] of names.entries()) {
      const lines = frame(props(live(s), { size: { columns: 100, rows: 24 }, focus: 'breakers', selected: { ...none, breakers: i } }));
      const marked = lines.filter((l) => l.startsWith('› '));
      expect(marked, lines.join('\n')).toHaveLength(1);
      expect(marked[0]).toMatch(new RegExp(`^› ${name} +OPEN`));
      // No process line without its breaker above it.
      const first = lines.findIndex((l) => l.includes('BREAKERS')) + 1;
      expect(lines[first]).not.toContain('per process');
    }
  });
});

describe('missing fields', () => {
  it('a null host, DLQ code/url/status, alert summary or severity, breaker state or processes: "-" instead of a crash', () => {
    const s = breakerOpenSnapshot();
    const nil = null as unknown as string;
    s.workers = [worker(1, { host: nil, id: nil })];
    s.dlq = dlqSnapshot(2).dlq!;
    s.dlq.newest[0] = { ...s.dlq.newest[0]!, host: nil, code: nil, url: nil, status: nil as never };
    s.alerts = [{ id: 'a', rule: 'R', severity: nil as never, summary: nil, since: iso(1_000) }];
    s.breakers![0] = { ...s.breakers![0]!, state: nil as never, uniform: false, processes: nil as never };
    s.serviceVersion = nil;
    for (const size of [{ columns: 80, rows: 24 }, { columns: 150, rows: 40 }]) {
      const text = wideFrame(props(live(s), { size, focus: 'breakers' })).join('\n');
      expect(text).toMatch(/› ai +- +0 fail/);
      expect(text).toMatch(/· - +- +1\/4/);
      expect(text).toMatch(/dlq_entry00000 +- +- /);
      expect(text).toMatch(/- +since/);
    }
  });
});

describe('wide characters', () => {
  it('a CJK host name is cut to its column, the row no wider than the terminal', () => {
    const s = dlqSnapshot(2);
    s.dlq!.newest[0] = { ...s.dlq!.newest[0]!, host: '例え.テスト.日本.例え.テスト', code: 'ナビゲーション・タイムアウト' };
    s.workers = [worker(1, { host: '日本語のホスト名' })];
    for (const columns of [80, 100, 150]) {
      const lines = wideFrame(props(live(s), { size: { columns, rows: 30 } }));
      for (const line of lines) expect(stringWidth(line), line).toBeLessThanOrEqual(columns);
      const row = lines.find((l) => l.includes('dlq_entry00000'))!;
      expect(row).toMatch(/例え\.テスト\.日本.*~ /);
    }
  });
});
