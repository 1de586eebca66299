/**
 * The fleet snapshot `wcagai top` shows: served once a second by GET /admin/events (server-sent
 * events) and on demand by GET /admin/snapshot. Plain data, shared by the server and the client.
 */

export const SNAPSHOT_VERSION = 1;

export type ServiceStatus = 'healthy' | 'degraded' | 'unhealthy';
export type BreakerStateName = 'CLOSED' | 'HALF_OPEN' | 'OPEN' | 'ISOLATED';
export type AlertSeverity = 'info' | 'warning' | 'error' | 'critical';

export interface QueueFigures {
  waiting: number;
  active: number;
  delayed: number;
  failed: number;
  /** Completed jobs BullMQ still keeps (its retention bounds it). */
  completed: number;
  paused: boolean;
  maxCapacity: number;
  utilizationPercent: number;
  /** healthy / warning / critical against MAX_QUEUE_DEPTH. */
  state: string;
}

/** One worker from its heartbeat. */
export interface WorkerRow {
  id: string;
  host: string;
  pid: number;
  active: number;
  concurrency: number;
  scansDone: number;
  browserRestarts: number;
  rssBytes: number;
  startedAt: string;
  /** Time since its last heartbeat when the snapshot was taken. */
  heartbeatAgeMs: number;
  /** No heartbeat for longer than two intervals: the process may be stuck or gone. */
  stale: boolean;
  /** Whether its browser runs (null when the heartbeat does not say). */
  browserUp: boolean | null;
}

/** One process's view of a breaker. */
export interface BreakerProcessState {
  process: string;
  state: BreakerStateName;
  failures: number;
  openedAt: string | null;
}

/** A service's breaker across the fleet: the worst state of any process. */
export interface BreakerRow {
  name: string;
  state: BreakerStateName;
  failures: number;
  openedAt: string | null;
  lastFailure: string | null;
  processes: BreakerProcessState[];
  /** Every process reports the same state. */
  uniform: boolean;
}

export interface DlqRow {
  id: string;
  host: string;
  code: string;
  url: string;
  /** Last failure (ISO). */
  at: string;
  status: string;
  attempts: number;
}

export interface DlqSection {
  size: number;
  oldest: string | null;
  lastHourAdded: number;
  /** The newest entries, newest first (at most a few dozen). */
  newest: DlqRow[];
}

export interface AlertRow {
  id: string;
  rule: string;
  severity: AlertSeverity;
  summary: string;
  /** Firing since (ISO). */
  since: string;
  /** Silenced by an operator until then (ISO): no notification is sent meanwhile. */
  silencedUntil?: string;
}

/** Scans finished fleet-wide, from the queue's event stream. */
export interface Throughput {
  /** Width of each bucket in seconds (oldest first). */
  bucketSeconds: number;
  /** Completed scans per bucket over the window (oldest first). */
  buckets: number[];
  /** Completed scans per minute over the last ten minutes (oldest first). */
  perMinute: number[];
  /** Completed and failed scans in the last 60 s. */
  lastMinute: number;
  failedLastMinute: number;
  /** 95th percentile of scan duration over the window; null without completed scans. */
  p95Ms: number | null;
  /** When this server began counting (ISO): the window before it is unknown, not idle. */
  since: string;
}

export interface Snapshot {
  version: typeof SNAPSHOT_VERSION;
  /** Increases by one per snapshot computed by this server. */
  seq: number;
  at: string;
  /** How long computing it took. */
  computeMs: number;
  status: ServiceStatus;
  serviceVersion: string;
  uptimeSeconds: number;
  /** /health/detailed without its worker list (see `workers`). */
  health: Record<string, unknown>;
  queue: QueueFigures | null;
  workers: WorkerRow[];
  throughput: Throughput;
  /** Absent when the server has no breakers. */
  breakers?: BreakerRow[];
  /** Absent when the server has no DLQ. */
  dlq?: DlqSection;
  /** Firing alerts; absent when alerting is off. */
  alerts?: AlertRow[];
}

const BREAKER_RANK: Record<BreakerStateName, number> = { CLOSED: 0, HALF_OPEN: 1, OPEN: 2, ISOLATED: 3 };

/**
 * A reported breaker state as of `now`: an OPEN breaker whose `halfOpenAfterMs` has passed since
 * `openedAt` is HALF_OPEN (its next call goes through as the trial). A heartbeat is up to an interval
 * old, and a process of an older version reports OPEN until a call arrives. Without both figures, as reported.
 */
export function breakerStateAt(b: { state: string; openedAt?: string | null; halfOpenAfterMs?: number }, now = Date.now()): string {
  if (b.state !== 'OPEN' || !b.openedAt || typeof b.halfOpenAfterMs !== 'number' || !Number.isFinite(b.halfOpenAfterMs)) return b.state;
  const openedAt = Date.parse(b.openedAt);
  return !Number.isNaN(openedAt) && now - openedAt >= b.halfOpenAfterMs ? 'HALF_OPEN' : 'OPEN';
}

/** Merges each process's breakers into one row per service (worst state, most failures, first opened); states as of `now` (see `breakerStateAt`). */
export function mergeBreakers(
  sources: ReadonlyArray<{ process: string; breakers: Record<string, { state: string; failures?: number; openedAt?: string | null; halfOpenAfterMs?: number; lastFailure?: string | null; lastFailureAt?: string | null }> }>,
  now = Date.now(),
): BreakerRow[] {
  const rows = new Map<string, BreakerRow & { lastFailureAt: string | null }>();
  for (const source of sources) {
    for (const [name, b] of Object.entries(source.breakers)) {
      const reported = breakerStateAt(b, now);
      const state = (reported in BREAKER_RANK ? reported : 'CLOSED') as BreakerStateName;
      const one: BreakerProcessState = { process: source.process, state, failures: b.failures ?? 0, openedAt: b.openedAt ?? null };
      const row = rows.get(name);
      if (!row) {
        rows.set(name, { name, state, failures: one.failures, openedAt: one.openedAt, lastFailure: b.lastFailure ?? null, lastFailureAt: b.lastFailureAt ?? null, processes: [one], uniform: true });
        continue;
      }
      row.processes.push(one);
      if (BREAKER_RANK[state] > BREAKER_RANK[row.state]) row.state = state;
      row.failures = Math.max(row.failures, one.failures);
      if (one.openedAt && (!row.openedAt || one.openedAt < row.openedAt)) row.openedAt = one.openedAt;
      if (b.lastFailure && (b.lastFailureAt ?? '') >= (row.lastFailureAt ?? '')) {
        row.lastFailure = b.lastFailure;
        row.lastFailureAt = b.lastFailureAt ?? null;
      }
    }
  }
  return [...rows.values()].map(({ lastFailureAt: _omit, ...row }) => ({ ...row, uniform: row.processes.every((p) => p.state === row.processes[0]!.state) }));
}

/** The `p`th percentile (0-100, nearest rank) of `values`; null when empty. */
export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}
