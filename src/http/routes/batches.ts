import { randomId } from '../../domain/ids.js';
import type { FastifyInstance } from 'fastify';
import { batchRequestSchema } from '../../domain/request.js';
import { WcagaiError } from '../../errors/catalogue.js';
import type { ScanStatus } from '../../queue/job.js';
import { admitOptions, admitUrl } from '../../queue/submission.js';
import { dedupeUrls, fetchSitemap } from '../../scanner/inputs.js';
import { checkTarget } from '../../scanner/target-guard.js';
import type { TargetPolicy } from '../../scanner/types.js';
import { ValidationError } from '../problem.js';
import type { ServerDeps } from '../server.js';
import { parseOrThrow } from '../validation.js';
import { methodGuard } from './method-guard.js';

const BATCH_ID = /^batch_[A-Za-z0-9_-]{1,64}$/;
const MAX_SITEMAP_REDIRECTS = 5;

/**
 * `fetch` for sitemaps fetched by the server: every URL it reaches (nested sitemaps of an index,
 * each redirect hop) passes the target policy first, as the sitemap URL itself did. Without this a
 * sitemap on an allowed host could point the server at internal addresses.
 */
function policyFetch(policy: TargetPolicy, fetchImpl: typeof fetch = fetch): typeof fetch {
  return async (input, init) => {
    let url = input instanceof Request ? input.url : String(input);
    for (let hop = 0; ; hop++) {
      await checkTarget(url, policy);
      const response = await fetchImpl(url, { ...init, redirect: 'manual' });
      const location = response.status >= 300 && response.status < 400 ? response.headers.get('location') : null;
      if (!location) return response;
      await response.body?.cancel().catch(() => undefined);
      if (hop >= MAX_SITEMAP_REDIRECTS) throw new WcagaiError('USAGE', `sitemap ${url}: more than ${MAX_SITEMAP_REDIRECTS} redirects`);
      url = new URL(location, url).href;
    }
  };
}

/** Batch routes: many URLs (or a sitemap) with shared options, and their progress. */
export function batchRoutes(app: FastifyInstance, deps: ServerDeps): void {
  const { producer, store, config } = deps;
  const max = config.MAX_BATCH_URLS;

  app.post('/api/batches', async (request, reply) => {
    const body = parseOrThrow(batchRequestSchema, request.body);
    const options = admitOptions(body);
    let raw: string[];
    if (body.sitemap) {
      const sitemap = await admitUrl(body.sitemap, deps.policy, 'sitemap');
      raw = await fetchSitemap(sitemap, { limit: Math.min(body.limit ?? max, max), timeoutMs: 15_000, fetchImpl: policyFetch(deps.policy) }).catch((err: Error) => {
        throw new ValidationError([{ field: 'sitemap', message: err.message }], 'sitemap not usable');
      });
      if (raw.length === 0) throw new ValidationError([{ field: 'sitemap', message: 'the sitemap lists no page' }]);
    } else {
      raw = body.urls!;
      if (raw.length > max) throw new ValidationError([{ field: 'urls', message: `at most ${max} URLs per batch, got ${raw.length}` }]);
    }
    const urls = await Promise.all(raw.map((u, i) => admitUrl(u, deps.policy, body.sitemap ? `sitemap[${i}]` : `urls[${i}]`)));
    const unique = dedupeUrls(urls).slice(0, body.limit ?? max);
    const id = randomId('batch_', 12);
    const requestId = String(request.id);
    const submitted = await producer.submitMany(unique, options, { priority: body.priority, requestId, batchId: id });
    await store.putBatch({ id, createdAt: new Date().toISOString(), ids: submitted.map((s) => s.id), requestId });
    request.log.info({ event: 'batch.queued', batchId: id, total: unique.length }, 'batch submitted');
    const self = `/api/batches/${id}`;
    return reply.code(202).header('location', self).send({ id, status: 'queued', total: unique.length, links: { self } });
  });
  methodGuard(app, '/api/batches', ['POST']);

  app.get<{ Params: { id: string } }>('/api/batches/:id', async (request) => {
    const { id } = request.params;
    const batch = BATCH_ID.test(id) ? await store.getBatch(id) : null;
    if (!batch) throw new WcagaiError('NOT_FOUND', `no batch with id ${id}`);
    const finals = await store.getMany(batch.ids);
    const scans = await Promise.all(
      batch.ids.map(async (scanId, i) => {
        const view = finals[i] ?? (await producer.view(scanId));
        return { id: scanId, url: view?.url ?? null, status: (view?.status ?? 'failed') as ScanStatus, ...(view?.error ? { error: view.error.code } : {}) };
      }),
    );
    const counts: Record<ScanStatus, number> = { queued: 0, active: 0, completed: 0, failed: 0 };
    for (const s of scans) counts[s.status]++;
    const finished = counts.completed + counts.failed === scans.length;
    return { id, createdAt: batch.createdAt, status: finished ? 'completed' : counts.active + counts.completed + counts.failed > 0 ? 'active' : 'queued', total: scans.length, counts, scans };
  });
  methodGuard(app, '/api/batches/:id', ['GET']);
}
