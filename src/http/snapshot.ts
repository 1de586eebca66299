import type { DlqPage, DlqSummary } from '../domain/dlq.js';
import { mergeBreakers, SNAPSHOT_VERSION, type AlertRow, type AlertSeverity, type DlqSection, type Snapshot, type Throughput, type WorkerRow } from '../domain/snapshot.js';
import type { WorkerHeartbeat } from '../queue/heartbeat.js';
import type { Capacity } from '../queue/producer.js';
import type { DetailedHealthBody } from './routes/health.js';

/** A breaker as a registry or a heartbeat reports it. */
type BreakerFigures = { state: string; failures?: number; openedAt?: string | null; halfOpenAfterMs?: number; trialInFlight?: boolean; lastFailure?: string | null; lastFailureAt?: string | null };

/** Where a snapshot's parts come from; the optional ones are left out of the snapshot when absent or failing. */
export interface SnapshotSources {
  /** The detailed health (the same computation as /health/detailed) and the queue counts it read. */
  health(): Promise<{ body: DetailedHealthBody; capacity: Capacity | null }>;
  throughput(): Throughput;
  /** This process's breakers (workers' come from their heartbeats). */
  breakers?: { processId: string; snapshot(): Record<string, BreakerFigures> };
  dlq?: { summary(): Promise<DlqSummary>; list(query: { limit: number }): Promise<DlqPage> };
  /** Alerts firing fleet-wide as this process last saw them. */
  alerts?: { firingNow(): ReadonlyArray<{ id: string; rule: string; severity: string; summary: string; since: number; silencedUntil?: number }> };
  /** Newest DLQ entries carried (default 50). */
  dlqRows?: number;
  /** A heartbeat older than this marks its worker stale (default 10 s: two beats). */
  staleAfterMs?: number;
  /** Deadline of each optional part (default 1.5 s). */
  partTimeoutMs?: number;
  now?: () => number;
}

function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([work, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('timeout')), ms)))]).finally(() => clearTimeout(timer));
}

function workerRow(hb: WorkerHeartbeat, now: number, staleAfterMs: number): WorkerRow {
  const age = Math.max(0, now - Date.parse(hb.at));
  const pid = (hb as { browserPid?: unknown }).browserPid;
  return {
    id: hb.id,
    host: hb.host,
    pid: hb.pid,
    active: hb.active,
    concurrency: hb.concurrency,
    scansDone: hb.scansDone,
    browserRestarts: hb.browserRestarts,
    rssBytes: hb.memory?.rss ?? 0,
    startedAt: hb.startedAt,
    heartbeatAgeMs: age,
    stale: age > staleAfterMs,
    browserUp: pid === undefined ? null : pid !== null,
  };
}

function breakersOf(value: unknown): Record<string, BreakerFigures> | null {
  return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, BreakerFigures>) : null;
}

const SEVERITIES: readonly string[] = ['info', 'warning', 'error', 'critical'];

/** Builds the function that computes one snapshot of the fleet from its sources. */
export function snapshotComputer(sources: SnapshotSources): () => Promise<Snapshot> {
  const now = sources.now ?? Date.now;
  const staleAfter = sources.staleAfterMs ?? 10_000;
  const deadline = sources.partTimeoutMs ?? 1_500;
  let seq = 0;

  const dlqPart = async (): Promise<DlqSection | undefined> => {
    const dlq = sources.dlq;
    if (!dlq) return undefined;
    const [summary, page] = await withDeadline(Promise.all([dlq.summary(), dlq.list({ limit: sources.dlqRows ?? 50 })]), deadline);
    return {
      size: summary.size,
      oldest: summary.oldest,
      lastHourAdded: summary.lastHourAdded,
      newest: page.entries.map((e) => ({ id: e.id, host: e.host, code: e.code, url: e.request.url, at: e.lastFailedAt, status: e.status, attempts: e.attemptsMade })),
    };
  };

  return async () => {
    const started = performance.now();
    const [{ body: health, capacity }, dlq] = await Promise.all([sources.health(), dlqPart().catch(() => undefined)]);
    const at = now();
    const { workers: heartbeats, ...healthRest } = health;
    const snapshot: Snapshot = {
      version: SNAPSHOT_VERSION,
      seq: ++seq,
      at: new Date(at).toISOString(),
      computeMs: 0,
      status: health.status,
      serviceVersion: health.version,
      uptimeSeconds: health.system.uptime,
      health: healthRest,
      queue: null,
      workers: heartbeats.map((hb) => workerRow(hb, at, staleAfter)),
      throughput: sources.throughput(),
    };
    if (capacity) {
      const { waiting, active, delayed, failed, completed, paused, maxCapacity, utilizationPercent, state } = capacity;
      snapshot.queue = { waiting, active, delayed, failed, completed, paused, maxCapacity, utilizationPercent, state };
    }
    // Breakers: this process's, then each other process's heartbeat, workers' and API processes'
    // (this process's own heartbeat, or its embedded worker's, holds the same breakers: counted once).
    const sourcesOfBreakers: Array<{ process: string; breakers: Record<string, BreakerFigures> }> = [];
    try {
      if (sources.breakers) sourcesOfBreakers.push({ process: sources.breakers.processId, breakers: sources.breakers.snapshot() });
    } catch {
      // left out below
    }
    for (const hb of [...heartbeats, ...(health.apiProcesses ?? [])]) {
      const b = breakersOf(hb.breakers);
      // This process's own, or its embedded worker's (which carries this process's id): read directly above.
      if (!b || (sources.breakers && (hb.id === sources.breakers.processId || hb.processId === sources.breakers.processId))) continue;
      sourcesOfBreakers.push({ process: hb.id, breakers: b });
    }
    if (sources.breakers || sourcesOfBreakers.length) snapshot.breakers = mergeBreakers(sourcesOfBreakers);
    if (dlq) snapshot.dlq = dlq;
    if (sources.alerts) {
      try {
        snapshot.alerts = sources.alerts
          .firingNow()
          .map((a): AlertRow => ({ id: a.id, rule: a.rule, severity: (SEVERITIES.includes(a.severity) ? a.severity : 'warning') as AlertSeverity, summary: a.summary, since: new Date(a.since).toISOString(), ...(a.silencedUntil ? { silencedUntil: new Date(a.silencedUntil).toISOString() } : {}) }))
          .sort((a, b) => SEVERITIES.indexOf(b.severity) - SEVERITIES.indexOf(a.severity) || a.since.localeCompare(b.since));
      } catch {
        // left out
      }
    }
    snapshot.computeMs = Math.round((performance.now() - started) * 10) / 10;
    return snapshot;
  };
}
