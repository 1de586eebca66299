import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { scanRequestSchema } from '../../domain/request.js';
import type { Report } from '../../domain/scan.js';
import { toolInfo } from '../../domain/version.js';
import { WcagaiError } from '../../errors/catalogue.js';
import type { ScanView } from '../../queue/job.js';
import { admitOptions, precheckUrl, ruleProblems, selectorProblems, type UrlCheck } from '../../queue/submission.js';
import { observeScan } from '../../observability/metrics.js';
import { urlForLog } from '../../observability/redact.js';
import { isReportFormat, render, type ReportFormat } from '../../reporters/index.js';
import { summarize } from '../../reporters/summary.js';
import { axeVersion } from '../../scanner/page-script.js';
import { emptyResult } from '../../scanner/results.js';
import { ValidationError } from '../problem.js';
import type { ServerDeps } from '../server.js';
import { validateOrThrow, type FieldCheck } from '../validation.js';
import { methodGuard } from './method-guard.js';

const MAX_WAIT_SECONDS = 120;
const SCAN_ID = /^scan_[A-Za-z0-9_-]{1,64}$/;

/** RFC 7230 token characters. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** An RFC 7230 quoted-string, its content captured. */
const QUOTED = /^"((?:[^"\\]|\\.)*)"$/;

/** `text` split on `separator` where it stands outside a quoted string (a `\` inside one escapes the next character). */
function splitUnquoted(text: string, separator: string): string[] {
  const parts: string[] = [];
  let start = 0;
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted && c === '\\') i++;
    else if (c === '"') quoted = !quoted;
    else if (!quoted && c === separator) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts;
}

/**
 * The preferences of a `Prefer` header (RFC 7240: `token [= word] *(; parameter)`, comma
 * separated, a word a token or a quoted string), by lower-case name, in order; the value is
 * unquoted, and null when it is neither a token nor a quoted string.
 */
function preferences(header: string): Array<{ name: string; value: string | null | undefined }> {
  const out: Array<{ name: string; value: string | null | undefined }> = [];
  for (const element of splitUnquoted(header, ',')) {
    const head = splitUnquoted(element, ';')[0]!;
    const eq = head.indexOf('=');
    const name = (eq < 0 ? head : head.slice(0, eq)).trim();
    if (!TOKEN.test(name)) continue;
    let value: string | null | undefined;
    if (eq >= 0) {
      const word = head.slice(eq + 1).trim();
      const quoted = QUOTED.exec(word);
      value = quoted ? quoted[1]!.replace(/\\(.)/g, '$1') : TOKEN.test(word) ? word : null;
    }
    out.push({ name: name.toLowerCase(), value });
  }
  return out;
}

/**
 * The `wait` preference of an RFC 7240 `Prefer` header, capped at 120 s: delta-seconds as a token
 * or a quoted string. Commas and semicolons inside quoted values of other preferences split nothing;
 * a preference given twice counts by its first instance (RFC 7240 section 2).
 */
export function preferWait(header: string | string[] | undefined): number | null {
  const value = Array.isArray(header) ? header.join(',') : header;
  if (!value) return null;
  const wait = preferences(value).find((p) => p.name === 'wait');
  if (!wait || typeof wait.value !== 'string' || !/^\d+$/.test(wait.value)) return null;
  return Math.min(Number(wait.value), MAX_WAIT_SECONDS);
}

const CONTENT_TYPES: Record<ReportFormat, string> = {
  json: 'application/json; charset=utf-8',
  html: 'text/html; charset=utf-8',
  sarif: 'application/sarif+json; charset=utf-8',
  junit: 'application/xml; charset=utf-8',
  csv: 'text/csv; charset=utf-8',
  pretty: 'text/plain; charset=utf-8',
};

/** A scan that has its final record: completed or failed. */
function isFinished(view: ScanView | null | undefined): view is ScanView & { status: 'completed' | 'failed' } {
  return view?.status === 'completed' || view?.status === 'failed';
}

/** 200 with a finished scan, as GET /api/scans/:id answers it. */
function finishedAnswer(reply: FastifyReply, view: ScanView) {
  return reply.code(200).header('content-location', `/api/scans/${view.id}`).send(view);
}

function accepted(reply: FastifyReply, id: string, status: ScanView['status'] = 'queued', extra: Record<string, unknown> = {}) {
  const self = `/api/scans/${id}`;
  return reply
    .code(202)
    .header('location', self)
    .send({ id, status, ...extra, links: { self, report: `${self}/report` } });
}

/**
 * A stored scan as a one-page report, rendered by the same reporters as `wcagai scan`. A scan
 * that failed without a result (a stalled one) is its page's error, never an empty report that
 * CI would read as a pass.
 */
export function reportOf(view: ScanView): Report {
  const pages = view.result ? [view.result] : view.status === 'failed' ? [emptyResult(view.url, view.error ?? { code: 'INTERNAL', message: 'the scan failed without a result', retryable: false })] : [];
  return {
    tool: toolInfo(),
    axeVersion: view.result?.rules.axeVersion ?? axeVersion(),
    startedAt: view.startedAt ?? view.createdAt ?? new Date().toISOString(),
    finishedAt: view.finishedAt ?? new Date().toISOString(),
    options: view.options,
    summary: summarize(pages),
    pages,
  };
}

/** Scan routes: submit (with cache, dedup, admission control and `Prefer: wait`), read, report. */
export function scanRoutes(app: FastifyInstance, deps: ServerDeps): void {
  const { producer, waiter } = deps;

  async function findView(request: FastifyRequest<{ Params: { id: string } }>): Promise<ScanView> {
    const { id } = request.params;
    const view = SCAN_ID.test(id) ? await producer.view(id) : null;
    if (!view) throw new WcagaiError('NOT_FOUND', `no scan with id ${id}`);
    return view;
  }

  const submit = async (request: FastifyRequest, reply: FastifyReply) => {
    // What can be known of a body without DNS, named along with what the schema refuses. The URL's
    // check goes on with DNS after that from where it stopped: the URL is parsed and checked once.
    let urlCheck: UrlCheck | undefined;
    const checks: FieldCheck[] = [
      async (raw) => {
        if (typeof raw.url !== 'string') return [];
        urlCheck = await precheckUrl(raw.url, deps.policy);
        return urlCheck.problem ? [urlCheck.problem] : [];
      },
      ruleProblems,
      selectorProblems,
    ];
    const body = await validateOrThrow(scanRequestSchema, request.body, checks);
    const url = await (urlCheck ?? (await precheckUrl(body.url, deps.policy))).admit();
    const options = admitOptions(body);
    const requestId = String(request.id);
    const { id, outcome } = await producer.submit(url, options, { priority: body.priority, requestId, ...(request.traceId ? { traceId: request.traceId } : {}) });
    request.log.info({ event: 'scan.queued', jobId: id, outcome, url: urlForLog(url) }, 'scan submitted');
    if (deps.metrics && outcome !== 'new') observeScan(deps.metrics, undefined, outcome === 'cached' ? 'cached' : 'deduplicated');
    if (outcome === 'cached') {
      const view = await producer.view(id);
      if (view) return reply.code(200).header('content-location', `/api/scans/${id}`).send({ ...view, cached: true });
    }
    const joined = outcome === 'inflight' ? { deduplicated: true } : {};
    const wait = preferWait(request.headers.prefer);
    if (wait !== null && wait > 0) {
      // The scan as last read: at the deadline, the status the 202 answers with.
      let last: ScanView | null | undefined;
      const isDone = async () => {
        last = await producer.view(id);
        return isFinished(last);
      };
      // A client that hangs up stops the wait at once: its waiter is not held for up to 120 s.
      const gone = new AbortController();
      const hangUp = () => gone.abort();
      reply.raw.once('close', hangUp);
      // A client that hung up while the scan was being submitted has no 'close' left to come.
      if (reply.raw.destroyed) gone.abort();
      let finished: boolean;
      try {
        finished = await waiter.wait(id, wait * 1_000, isDone, gone.signal);
      } finally {
        reply.raw.off('close', hangUp);
      }
      if (gone.signal.aborted) {
        request.log.info({ event: 'scan.wait_abandoned', jobId: id }, 'client closed the connection while waiting; the scan goes on');
        return accepted(reply, id);
      }
      reply.header('preference-applied', `wait=${wait}`);
      if (finished) {
        const view = await producer.view(id);
        // A waiter woken by shutdown sees an unfinished scan: that is a 202, not a result.
        if (isFinished(view)) return finishedAnswer(reply, view);
        if (view) last = view;
      }
      // Past the deadline the scan is queued or running: the 202 says which (read at the deadline).
      return accepted(reply, id, last?.status === 'active' ? 'active' : 'queued', joined);
    }
    if (outcome === 'inflight') {
      // The job joined may be running, or may have finished since it was found: the answer says
      // which (one read, for a joining request only; a new job is queued by definition).
      const view = await producer.view(id);
      if (isFinished(view)) return finishedAnswer(reply, view);
      return accepted(reply, id, view?.status === 'active' ? 'active' : 'queued', joined);
    }
    return accepted(reply, id);
  };

  app.post('/api/scans', submit);
  app.post('/api/scan', submit);
  methodGuard(app, '/api/scans', ['POST']);
  methodGuard(app, '/api/scan', ['POST']);

  app.get<{ Params: { id: string } }>('/api/scans/:id', async (request) => findView(request));
  methodGuard(app, '/api/scans/:id', ['GET']);

  app.get<{ Params: { id: string }; Querystring: { format?: string } }>('/api/scans/:id/report', async (request, reply) => {
    const format = request.query.format ?? 'json';
    if (!isReportFormat(format)) throw new ValidationError([{ field: 'format', message: 'expected json, html, sarif, junit, csv or pretty' }], 'invalid query');
    const view = await findView(request);
    if (!isFinished(view)) {
      throw new WcagaiError('CONFLICT', `scan ${view.id} is ${view.status}; its report exists once it has finished`);
    }
    return reply.type(CONTENT_TYPES[format]).send(render(reportOf(view), format));
  });
  methodGuard(app, '/api/scans/:id/report', ['GET']);
}
