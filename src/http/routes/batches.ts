import { forEachLimited } from '../../domain/concurrency.js';
import { randomId } from '../../domain/ids.js';
import type { FastifyInstance } from 'fastify';
import { batchRequestSchema } from '../../domain/request.js';
import { WcagaiError } from '../../errors/catalogue.js';
import { urlForLog } from '../../observability/redact.js';
import type { ScanStatus } from '../../queue/job.js';
import type { ScanProducer } from '../../queue/producer.js';
import type { BatchRecord, ResultStore } from '../../queue/store.js';
import { admitOptions, FieldProblem, precheckUrl, ruleProblems, selectorProblems, type UrlCheck } from '../../queue/submission.js';
import type { TargetPolicy } from '../../scanner/types.js';
import { dedupeUrls, fetchSitemap, type SkippedSitemap } from '../../scanner/inputs.js';
import { policyFetch } from '../../scanner/policy-fetch.js';
import { ValidationError } from '../problem.js';
import type { ServerDeps } from '../server.js';
import { validateOrThrow, type FieldCheck } from '../validation.js';
import { methodGuard } from './method-guard.js';

const BATCH_ID = /^batch_[A-Za-z0-9_-]{1,64}$/;
/** What one batch request may make the server fetch: sitemap documents, and time for all of them. */
const MAX_SITEMAP_DOCUMENTS = 50;
const SITEMAP_TOTAL_TIMEOUT_MS = 60_000;

/**
 * Checks many URLs (a batch), at most `concurrency` look-ups at a time, and names every bad one:
 * one bad URL is its own problem (as for a single scan), several are one validation error listing
 * each by field, in order. Nothing is admitted unless every URL is. A URL checked already without
 * DNS (`prechecked[i]`) goes on from there rather than being parsed and checked again.
 */
async function admitUrls(raws: readonly string[], policy: TargetPolicy, fieldOf: (i: number) => string, prechecked: ReadonlyArray<UrlCheck | undefined> = [], concurrency = 16): Promise<string[]> {
  const admitted: string[] = new Array<string>(raws.length);
  const problems: Array<{ index: number; problem: FieldProblem }> = [];
  await forEachLimited(raws, concurrency, async (raw, i) => {
    try {
      admitted[i] = await (prechecked[i] ?? (await precheckUrl(raw, policy, fieldOf(i)))).admit();
    } catch (err) {
      if (!(err instanceof FieldProblem)) throw err;
      problems.push({ index: i, problem: err });
    }
  });
  if (problems.length === 1) throw problems[0]!.problem;
  if (problems.length > 1) {
    problems.sort((a, b) => a.index - b.index);
    throw new ValidationError(problems.map(({ problem }) => ({ field: problem.field, message: problem.reason })), `${problems.length} URLs refused`);
  }
  return admitted;
}

type Truncation = NonNullable<BatchRecord['truncation']>;

/** What a batch answer says of a sitemap read in part: `truncated: true`, and at which limit; nothing otherwise. */
function truncationFields(batch: BatchRecord): Record<string, unknown> {
  return batch.truncation ? { truncated: true, limit: batch.truncation.limit, limitBy: batch.truncation.limitBy } : {};
}

/**
 * A batch as `GET /api/batches/:id` answers it: each scan's status (a scan replayed from the DLQ
 * counts as its latest replay), counts, the batch's status and its link. A scan's `error` is its
 * code, as it always was (clients read it as a string); `errorDetail` beside it is the object a
 * scan's own `error` is ({ code, message, retryable }); its `links` go to the scan's record and
 * report (its latest replay's).
 */
async function batchView(batch: BatchRecord, store: ResultStore, producer: ScanProducer) {
  const { id } = batch;
  // A scan replayed from the DLQ counts as its latest replay (`replayId`): a batch whose failed
  // pages were fixed and retried completes.
  const replays = await store.batchReplays(id);
  // A replay's own DLQ entry (its first was deleted while it ran) is replayed in turn: followed to the latest.
  const latest = (scanId: string) => {
    let at = scanId;
    for (let hops = 0; replays[at] !== undefined && hops < 100; hops++) at = replays[at]!;
    return at;
  };
  const current = batch.ids.map(latest);
  const finals = await store.getMany(current);
  const scans = await Promise.all(
    batch.ids.map(async (scanId, i) => {
      const view = finals[i] ?? (await producer.view(current[i]!));
      const replayId = current[i] !== scanId ? current[i] : undefined;
      // The record and report that hold this page's outcome: its latest replay's when it was retried.
      const self = `/api/scans/${current[i]!}`;
      return {
        id: scanId,
        url: view?.url ?? null,
        status: (view?.status ?? 'failed') as ScanStatus,
        ...(view?.error ? { error: view.error.code, errorDetail: view.error } : {}),
        ...(replayId ? { replayId } : {}),
        links: { self, report: `${self}/report` },
      };
    }),
  );
  const counts: Record<ScanStatus, number> = { queued: 0, active: 0, completed: 0, failed: 0 };
  for (const s of scans) counts[s.status]++;
  const finished = counts.completed + counts.failed === scans.length;
  const status: ScanStatus = finished ? 'completed' : counts.active + counts.completed + counts.failed > 0 ? 'active' : 'queued';
  return { id, createdAt: batch.createdAt, status, total: scans.length, counts, scans, links: { self: `/api/batches/${id}` } };
}

/** Batch routes: many URLs (or a sitemap) with shared options, and their progress. */
export function batchRoutes(app: FastifyInstance, deps: ServerDeps): void {
  const { producer, store, config } = deps;
  const max = config.MAX_BATCH_URLS;

  /**
   * What can be known of a body without DNS or a sitemap fetch, named along with what the schema
   * refuses. The URL checks made here go on with DNS afterwards, from where they stopped.
   */
  function checksOf(urlChecks: Array<UrlCheck | undefined>, sitemapCheck: { check?: UrlCheck }): FieldCheck[] {
    return [
      (raw) => ((raw.urls === undefined) === (raw.sitemap === undefined) ? [new FieldProblem('VALIDATION_FAILED', 'urls', 'give either urls or sitemap')] : []),
      // `limit` caps the pages read from a sitemap; applied to a URL list it would drop URLs the client named.
      (raw) => (raw.limit !== undefined && raw.urls !== undefined && raw.sitemap === undefined ? [new FieldProblem('VALIDATION_FAILED', 'limit', 'limit applies to a sitemap only: with urls, send the URLs to scan')] : []),
      async (raw) => {
        if (!Array.isArray(raw.urls)) return [];
        if (raw.urls.length > max) return [new FieldProblem('VALIDATION_FAILED', 'urls', `at most ${max} URLs per batch, got ${raw.urls.length}`)];
        const found = await Promise.all(raw.urls.map((url: unknown, i) => (typeof url === 'string' ? precheckUrl(url, deps.policy, `urls[${i}]`) : undefined)));
        urlChecks.push(...found);
        return found.flatMap((c) => (c?.problem ? [c.problem] : []));
      },
      async (raw) => {
        if (typeof raw.sitemap !== 'string') return [];
        sitemapCheck.check = await precheckUrl(raw.sitemap, deps.policy, 'sitemap');
        return sitemapCheck.check.problem ? [sitemapCheck.check.problem] : [];
      },
      ruleProblems,
      selectorProblems,
    ];
  }

  app.post('/api/batches', async (request, reply) => {
    const urlChecks: Array<UrlCheck | undefined> = [];
    const sitemapCheck: { check?: UrlCheck } = {};
    const body = await validateOrThrow(batchRequestSchema, request.body, checksOf(urlChecks, sitemapCheck));
    const options = admitOptions(body);
    let raw: string[];
    // Child sitemaps of an index that could not be read: left out, and named in the answer.
    const skipped: SkippedSitemap[] = [];
    let truncation: Truncation | undefined;
    if (body.sitemap) {
      const sitemap = await (sitemapCheck.check ?? (await precheckUrl(body.sitemap, deps.policy, 'sitemap'))).admit();
      const cap = Math.min(body.limit ?? max, max);
      const onSkip = (s: SkippedSitemap) => skipped.push(s);
      // The walk stops at the cap and says whether the sitemap listed more (no page past it is read).
      const onMore = () => (truncation = { limit: cap, limitBy: body.limit !== undefined && body.limit <= max ? 'limit' : 'MAX_BATCH_URLS' });
      raw = await fetchSitemap(sitemap, { onSkip, onMore, limit: cap, timeoutMs: 15_000, totalTimeoutMs: SITEMAP_TOTAL_TIMEOUT_MS, maxDocuments: MAX_SITEMAP_DOCUMENTS, fetchImpl: policyFetch(deps.policy) }).catch((err: Error) => {
        throw new ValidationError([{ field: 'sitemap', message: err.message }], 'sitemap not usable');
      });
      if (raw.length === 0) throw new ValidationError([{ field: 'sitemap', message: 'the sitemap lists no page' }]);
    } else {
      // Their count (at most MAX_BATCH_URLS), syntax and scheme passed the checks above.
      raw = body.urls!;
    }
    const urls = await admitUrls(raw, deps.policy, (i) => (body.sitemap ? `sitemap[${i}]` : `urls[${i}]`), body.sitemap ? [] : urlChecks);
    const unique = dedupeUrls(urls).slice(0, body.limit ?? max);
    const id = randomId('batch_', 12);
    const requestId = String(request.id);
    const submitted = await producer.submitMany(unique, options, { priority: body.priority, requestId, batchId: id, ...(request.traceId ? { traceId: request.traceId } : {}) }).catch((err: unknown) => {
      // More pages than the queue may ever hold: named by the field they came from.
      if (body.sitemap && err instanceof WcagaiError && err.details?.newScans !== undefined) throw new ValidationError([{ field: 'sitemap', message: `${err.message} (or set limit)` }], 'sitemap too large');
      throw err;
    });
    const record: BatchRecord = { id, createdAt: new Date().toISOString(), ids: submitted.map((s) => s.id), requestId, ...(truncation ? { truncation } : {}) };
    await store.putBatch(record);
    request.log.info({ event: 'batch.queued', batchId: id, total: unique.length, ...(truncation ? { truncatedAt: truncation.limit } : {}) }, 'batch submitted');
    if (skipped.length) request.log.warn({ event: 'batch.sitemap.skipped', batchId: id, skipped: skipped.map((s) => urlForLog(s.sitemap)) }, `${skipped.length} sitemap(s) of the index could not be read and were skipped`);
    const self = `/api/batches/${id}`;
    const told = { ...truncationFields(record), ...(skipped.length ? { skipped } : {}) };
    // Every page from the cache: a 200 with the batch as GET /api/batches/:id shows it, as a single
    // scan's cached answer is. Read at best: the batch is stored and its scans queued, so a failed
    // read answers 202 as any other batch does, never an error that would lose its id.
    if (submitted.every((s) => s.outcome === 'cached')) {
      const view = await batchView(record, store, producer).catch(() => null);
      if (view) return reply.code(200).header('location', self).header('content-location', self).send({ ...view, ...told, cached: true });
    }
    return reply.code(202).header('location', self).send({ id, status: 'queued', total: unique.length, ...told, links: { self } });
  });
  methodGuard(app, '/api/batches', ['POST']);

  app.get<{ Params: { id: string } }>('/api/batches/:id', async (request) => {
    const { id } = request.params;
    const batch: BatchRecord | null = BATCH_ID.test(id) ? await store.getBatch(id) : null;
    if (!batch) throw new WcagaiError('NOT_FOUND', `no batch with id ${id}`);
    const view = await batchView(batch, store, producer);
    return { ...view, ...truncationFields(batch) };
  });
  methodGuard(app, '/api/batches/:id', ['GET']);
}
