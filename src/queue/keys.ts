/**
 * Redis key layout. Every key of a deployment shares the hash tag `{prefix}`, so BullMQ's
 * multi-key scripts and ours work on Redis Cluster (one slot per deployment).
 */
export interface Keys {
  /** BullMQ's `prefix` option. */
  bullPrefix: string;
  queueName: string;
  result(id: string): string;
  cache(cacheKey: string): string;
  inflight(cacheKey: string): string;
  batch(id: string): string;
  /** HASH of a batch's scans replayed from the DLQ: original scan id → its latest replay's id. */
  batchReplays(id: string): string;
  worker(id: string): string;
  workers: string;
  /**
   * Heartbeats of processes that serve the API without a worker: a set and keys of their own beside
   * the workers', so a process of a version that reads only `workers` (a rolling upgrade) never
   * counts one as a worker.
   */
  apiProcess(id: string): string;
  apiProcesses: string;
  /** BullMQ's own keys that count towards queue depth. */
  wait: string;
  paused: string;
  prioritized: string;
  active: string;
  /** BullMQ's ZSET of jobs waiting for a retry's backoff (they count towards depth: they come back to `wait`). */
  delayed: string;
  /** BullMQ's hash of one job of the scan queue. */
  job(id: string): string;
  /** Set while the in-flight markers of queued jobs were renewed lately (see the producer's ADMIT script). */
  inflightRenewed: string;
  /** Admitted jobs not yet added to BullMQ (ZSET of job ids scored by expiry); they count towards queue depth. */
  admitting: string;
  /** Dead-letter queue keys (layout in queue/dlq-store.ts). */
  dlq: DlqKeys;
  /** BullMQ queue of housekeeping jobs (DLQ retention). */
  maintenanceQueueName: string;
  /** Everything of this deployment, for cleanup of private test and stress prefixes. */
  pattern: string;
}

export interface DlqKeys {
  /** HASH per entry: json, rev, code, host, day, t, status. */
  entry(id: string): string;
  /** STRING per captured job id -> DLQ id: makes capture idempotent. */
  job(jobId: string): string;
  /** ZSET of entry ids by last failure time. */
  time: string;
  byCode(code: string): string;
  byHost(host: string): string;
  /** HASH of entry counts per code, host or UTC day. */
  counts(dimension: 'code' | 'host' | 'day'): string;
  /** ZSET of the entries being retried, by when their replay is next checked. */
  retrying: string;
  /** STRING, set once `retrying` holds every retrying entry (written before it existed too). */
  retryingBuilt: string;
}

export const QUEUE_NAME = 'scans';

/** Key names for a deployment prefix such as `wcagai`. */
export function keysFor(prefix: string): Keys {
  const p = `{${prefix}}`;
  const q = `${p}:${QUEUE_NAME}`;
  return {
    bullPrefix: p,
    queueName: QUEUE_NAME,
    result: (id) => `${p}:result:${id}`,
    cache: (k) => `${p}:cache:${k}`,
    inflight: (k) => `${p}:inflight:${k}`,
    batch: (id) => `${p}:batch:${id}`,
    batchReplays: (id) => `${p}:batch:${id}:replays`,
    worker: (id) => `${p}:worker:${id}`,
    workers: `${p}:workers`,
    apiProcess: (id) => `${p}:api-process:${id}`,
    apiProcesses: `${p}:api-processes`,
    wait: `${q}:wait`,
    paused: `${q}:paused`,
    prioritized: `${q}:prioritized`,
    active: `${q}:active`,
    delayed: `${q}:delayed`,
    job: (id) => `${q}:${id}`,
    inflightRenewed: `${p}:inflight-renewed`,
    admitting: `${p}:admitting`,
    dlq: {
      entry: (id) => `${p}:dlq:e:${id}`,
      job: (jobId) => `${p}:dlq:j:${jobId}`,
      time: `${p}:dlq:t`,
      byCode: (code) => `${p}:dlq:c:${code}`,
      byHost: (host) => `${p}:dlq:h:${host}`,
      counts: (dimension) => `${p}:dlq:n:${dimension}`,
      retrying: `${p}:dlq:r`,
      retryingBuilt: `${p}:dlq:r:built`,
    },
    maintenanceQueueName: 'maintenance',
    pattern: `${p}:*`,
  };
}
