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
  worker(id: string): string;
  workers: string;
  /** BullMQ's own keys that count towards queue depth. */
  wait: string;
  paused: string;
  prioritized: string;
  active: string;
  /** Everything of this deployment, for cleanup of private test and stress prefixes. */
  pattern: string;
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
    worker: (id) => `${p}:worker:${id}`,
    workers: `${p}:workers`,
    wait: `${q}:wait`,
    paused: `${q}:paused`,
    prioritized: `${q}:prioritized`,
    active: `${q}:active`,
    pattern: `${p}:*`,
  };
}
