import { randomId } from '../domain/ids.js';
import { Queue } from 'bullmq';
import type { Config } from '../config/schema.js';
import { WcagaiError, isWcagaiError } from '../errors/catalogue.js';
import type { ScanOptions } from '../domain/scan.js';
import { apiFieldErrors, WcagaiApi } from '../clients/wcagai-api.js';
import { keysFor } from '../queue/keys.js';
import { producerOf } from '../queue/producer.js';
import { abandonConnection, producerConnection, redisStartError, redisTargetOf, waitReady } from '../queue/redis.js';
import { admitUrl } from '../queue/submission.js';
import { policyOf } from './scanner-config.js';

export interface QueuedBatch {
  id: string;
  total: number;
  /** Where the batch went: a server's API, or straight into the queue at REDIS_URL. */
  via: 'api' | 'redis';
  /** URLs the target policy refused (a dead domain, a private address): left out, the others queued. */
  refused: Array<{ url: string; reason: string }>;
}

const NONE_ALLOWED = 'no website found is allowed as a scan target';

/**
 * Through the API: the server refuses a whole batch when one URL is not allowed, naming each in
 * `errors[].field` as `urls[i]`. Those are left out and the rest sent again, once, as direct mode does.
 */
async function queueThroughApi(api: WcagaiApi, urls: readonly string[], options: ScanOptions): Promise<QueuedBatch> {
  const submit = (list: readonly string[]) => api.call<{ id: string; total: number }>('POST', '/api/batches', { urls: list, wcagLevel: options.wcagLevel, wcagVersion: options.wcagVersion, priority: 'low' });
  try {
    const answer = await submit(urls);
    return { id: answer.id, total: answer.total, via: 'api', refused: [] };
  } catch (err) {
    const reasons = new Map<number, string>();
    for (const e of apiFieldErrors(err)) {
      const i = /^urls\[(\d+)\]$/.exec(e.field)?.[1];
      if (i !== undefined && Number(i) < urls.length) reasons.set(Number(i), e.message);
    }
    if (!(err instanceof WcagaiError) || err.details?.httpStatus !== 400 || reasons.size === 0) throw err;
    const refused = [...reasons].sort(([a], [b]) => a - b).map(([i, reason]) => ({ url: urls[i]!, reason }));
    const rest = urls.filter((_, i) => !reasons.has(i));
    if (rest.length === 0) throw new WcagaiError('USAGE', `${NONE_ALLOWED}: ${refused.map((r) => `${r.url} (${r.reason})`).join('; ')}`);
    const answer = await submit(rest);
    return { id: answer.id, total: answer.total, via: 'api', refused };
  }
}

/** Queues `urls` as one batch, through the API at `url` when given, else directly through the producer. */
export async function queueBatch(config: Config, urls: readonly string[], options: ScanOptions, via: { url?: string | undefined; apiKey?: string | undefined; requestId: string }): Promise<QueuedBatch> {
  if (via.url) return queueThroughApi(new WcagaiApi({ url: via.url, token: via.apiKey }), urls, options);
  const keys = keysFor(config.QUEUE_PREFIX);
  const target = redisTargetOf(config);
  const redis = producerConnection(target, { commandTimeout: 30_000 });
  redis.on('error', () => undefined);
  const queue = new Queue(keys.queueName, { connection: redis, prefix: keys.bullPrefix });
  queue.on('error', () => undefined);
  try {
    try {
      await waitReady(redis, 5_000);
    } catch (err) {
      await abandonConnection(redis, queue);
      throw redisStartError(target, err, 'set REDIS_URL, or --url to go through a server');
    }
    const { store, producer } = producerOf(queue, redis, keys, config);
    const policy = policyOf(config);
    const admitted: string[] = [];
    const refused: QueuedBatch['refused'] = [];
    for (const raw of urls) {
      try {
        admitted.push(await admitUrl(raw, policy));
      } catch (err) {
        if (!isWcagaiError(err)) throw err;
        refused.push({ url: raw, reason: err.message });
      }
    }
    if (admitted.length === 0) throw new WcagaiError('USAGE', NONE_ALLOWED);
    const id = randomId('batch_', 12);
    const submitted = await producer.submitMany(admitted, options, { priority: 'low', requestId: via.requestId, batchId: id });
    await store.putBatch({ id, createdAt: new Date().toISOString(), ids: submitted.map((s) => s.id), requestId: via.requestId });
    return { id, total: admitted.length, via: 'redis', refused };
  } finally {
    await queue.close().catch(() => undefined);
    await redis.quit().catch(() => redis.disconnect());
  }
}
