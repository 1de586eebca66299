import type { Snapshot } from '../domain/snapshot.js';

/** A process serving the API without a worker, as the snapshot's detailed health lists it. */
export interface ApiProcessRow {
  id: string;
  host: string;
  pid: number;
  rssBytes: number;
  startedAt: string;
  /** Time since its last heartbeat when the snapshot was taken. */
  heartbeatAgeMs: number;
  stale: boolean;
}

const STALE_AFTER_MS = 10_000;

/**
 * The API processes of the fleet, from `health.apiProcesses` (their heartbeats, as /health/detailed
 * has them); empty from a server that does not report them. Never counted as workers.
 */
export function apiProcessesOf(snapshot: Snapshot | null): ApiProcessRow[] {
  const list = snapshot?.health?.apiProcesses;
  if (!Array.isArray(list)) return [];
  const at = Date.parse(snapshot!.at);
  const rows: ApiProcessRow[] = [];
  for (const item of list as unknown[]) {
    if (!item || typeof item !== 'object') continue;
    const hb = item as Record<string, unknown>;
    if (typeof hb.id !== 'string') continue;
    const memory = hb.memory && typeof hb.memory === 'object' ? (hb.memory as Record<string, unknown>) : {};
    const beat = typeof hb.at === 'string' ? Date.parse(hb.at) : NaN;
    const age = Number.isFinite(beat) && Number.isFinite(at) ? Math.max(0, at - beat) : 0;
    rows.push({
      id: hb.id,
      host: typeof hb.host === 'string' ? hb.host : '-',
      pid: typeof hb.pid === 'number' ? hb.pid : 0,
      rssBytes: typeof memory.rss === 'number' ? memory.rss : 0,
      startedAt: typeof hb.startedAt === 'string' ? hb.startedAt : '',
      heartbeatAgeMs: age,
      stale: age > STALE_AFTER_MS,
    });
  }
  return rows;
}
