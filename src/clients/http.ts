import type { z } from 'zod';
import { toolInfo } from '../domain/version.js';
import { WcagaiError, type ErrorCode } from '../errors/catalogue.js';
import { currentContext } from '../observability/context.js';
import { clean as controlFree } from '../domain/text.js';
import { maskUrl } from '../config/secrets.js';

/** The external services wcagai calls; each has one breaker of the same name. */
export const SERVICE_NAMES = ['ai', 'apollo', 'hubspot', 'slack', 'pagerduty'] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

export interface UpstreamErrorOptions {
  httpStatus?: number;
  retryAfterMs?: number;
  /** Worth trying again within the same call: network errors, 429, 5xx. */
  transient?: boolean;
  /** Counts as a failure towards the service's circuit breaker. */
  breakerFailure?: boolean;
  cause?: unknown;
}

/** A failed call to an external service, carrying what the resilience policy decides on. */
export class UpstreamError extends WcagaiError {
  readonly service: string;
  readonly httpStatus: number | undefined;
  readonly retryAfterMs: number | undefined;
  readonly transient: boolean;
  readonly breakerFailure: boolean;

  constructor(code: ErrorCode, service: string, message: string, options: UpstreamErrorOptions = {}) {
    super(code, message, {
      ...(options.cause === undefined ? {} : { cause: options.cause }),
      details: { service, ...(options.httpStatus ? { httpStatus: options.httpStatus } : {}), ...(options.retryAfterMs !== undefined ? { retryAfterSeconds: Math.ceil(options.retryAfterMs / 1000) } : {}) },
    });
    this.name = 'UpstreamError';
    this.service = service;
    this.httpStatus = options.httpStatus;
    this.retryAfterMs = options.retryAfterMs;
    this.transient = options.transient ?? false;
    this.breakerFailure = options.breakerFailure ?? false;
  }
}

export interface UpstreamRequest<T> {
  service: string;
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: string;
  headers?: Record<string, string>;
  /** Sent as JSON. */
  body?: unknown;
  /** Checks the answer: JSON, or the body text when `text` is set. */
  schema: z.ZodType<T>;
  text?: boolean;
  signal: AbortSignal;
  /** Values scrubbed from any error text: keys, tokens, webhook URLs. */
  secrets?: ReadonlyArray<string | undefined>;
  /** Leave the path out of error texts (Slack webhook paths are secrets). */
  hidePath?: boolean;
  /**
   * Harmless to send twice (default: GET, PUT and DELETE). A POST that changes nothing (a search,
   * a completion) or that the service deduplicates (PagerDuty's dedup_key) says so. A request that
   * is not is retried only when it provably did not take effect: see `callUpstream`.
   */
  idempotent?: boolean;
}

export interface UpstreamAnswer<T> {
  status: number;
  value: T;
  /** The body as received, at most 2 000 characters (for `wcagai alerts test`). */
  raw: string;
}

const MAX_SNIPPET = 200;

/** `text` with every secret replaced, for error messages and logs. */
export function scrub(text: string, secrets: ReadonlyArray<string | undefined> = []): string {
  let out = text;
  for (const s of secrets) if (s && s.length >= 4) out = out.split(s).join('[redacted]');
  return out;
}

/** Retry-After as milliseconds: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

function issues(error: z.ZodError): string {
  return error.issues
    .slice(0, 3)
    .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
    .join('; ');
}

/** Connection errors that prove the request never reached the server: refused, or no address for the name. */
const NEVER_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN']);

/**
 * One HTTP call to an external service with the request id of the current request or job
 * forwarded as X-Request-ID. Every failure becomes an UpstreamError with a catalogue code;
 * error texts never carry headers, and configured secrets are scrubbed from them.
 *
 * An idempotent request's network errors, cut-off answers, 408, 429 and 5xx are `transient` (retried).
 * A non-idempotent one (a note created, a Slack message posted) may have taken effect although no
 * answer came, so only a refused connection, an unknown host, a 408 or 429 (both refuse the request
 * unprocessed) or a 503 with Retry-After (the service says it did not process it) are; a reset
 * connection, a cut-off answer or another 5xx fail the call at once rather than risk doing it twice.
 * Network errors, cut-off answers and 5xx count towards the breaker; a 429 does not (the service is
 * up and asks to slow down).
 */
export async function callUpstream<T>(req: UpstreamRequest<T>): Promise<UpstreamAnswer<T>> {
  const target = new URL(req.url);
  const where = `${req.method} ${target.origin}${req.hidePath ? '' : target.pathname}`;
  const clean = (text: string) => scrub(text, [...(req.secrets ?? []), req.hidePath ? req.url : undefined]);
  const idempotent = req.idempotent ?? (req.method === 'GET' || req.method === 'PUT' || req.method === 'DELETE');
  const requestId = currentContext()?.requestId;
  const headers: Record<string, string> = {
    accept: req.text ? 'text/plain, application/json' : 'application/json',
    'user-agent': `wcagai/${toolInfo().version}`,
    ...(req.body !== undefined ? { 'content-type': 'application/json' } : {}),
    ...(requestId ? { 'x-request-id': requestId } : {}),
    ...req.headers,
  };
  if (target.username || target.password) {
    // fetch refuses such a URL before sending anything, and its message repeats the URL, password
    // included: a setting to correct, neither retried nor held against the breaker.
    throw new UpstreamError('NOT_CONFIGURED', req.service, clean(`${req.service}: ${where}: the URL holds a user name or password (user:password@host), which is never sent; give the credentials in the service's key or token setting`));
  }
  let response: Response;
  try {
    // Redirects are not followed: fetch would send the key headers (x-api-key) and, on 307/308, the
    // body (a routing key) on to wherever the answer points.
    response = await fetch(req.url, { method: req.method, headers, signal: req.signal, redirect: 'manual', ...(req.body !== undefined ? { body: JSON.stringify(req.body) } : {}) });
  } catch (err) {
    if (req.signal.aborted) throw err;
    const cause = (err as { cause?: { code?: string; message?: string; errors?: Array<{ code?: string }> } }).cause;
    const code = cause?.code ?? cause?.errors?.[0]?.code;
    // Node's messages may repeat the URL: its credentials are masked like in log lines.
    const reason = maskUrl(code ?? cause?.message ?? (err as Error).message, '***');
    const neverSent = code !== undefined && NEVER_SENT.has(code);
    throw new UpstreamError('UPSTREAM_UNAVAILABLE', req.service, clean(`${req.service}: ${where} failed: ${reason}`), { transient: idempotent || neverSent, breakerFailure: true, cause: err });
  }
  let raw: string;
  try {
    raw = await response.text();
  } catch (err) {
    if (req.signal.aborted) throw err;
    throw new UpstreamError('UPSTREAM_UNAVAILABLE', req.service, clean(`${req.service}: ${where}: the answer was cut off`), { transient: idempotent, breakerFailure: true, cause: err });
  }
  // The start of the answer goes into messages shown on terminals (`top`, logs): no control characters.
  // Secrets are scrubbed before the cut: one the cut went through would otherwise show its first characters.
  const snippet = clean(controlFree(raw).replace(/\s+/g, ' ').trim()).slice(0, MAX_SNIPPET);
  const status = response.status;
  const retryAfterMs = status === 429 || status === 503 ? parseRetryAfter(response.headers.get('retry-after')) : undefined;
  if (status === 429) {
    // "Slow down", not a failure: the service is up and refused the request before processing it
    // (so even a note create is safe to send again). Retried after the backoff or its Retry-After,
    // never held against the breaker: a burst of calls must not shut the integration off.
    throw new UpstreamError('UPSTREAM_RATE_LIMITED', req.service, `${req.service}: ${where} answered 429${retryAfterMs !== undefined ? ` (Retry-After ${Math.ceil(retryAfterMs / 1000)} s)` : ''}${snippet ? `: ${snippet}` : ''}`, {
      httpStatus: status,
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
      transient: true,
      breakerFailure: false,
    });
  }
  if (status >= 500) {
    throw new UpstreamError('UPSTREAM_UNAVAILABLE', req.service, `${req.service}: ${where} answered ${status}${snippet ? `: ${snippet}` : ''}`, {
      httpStatus: status,
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
      transient: idempotent || retryAfterMs !== undefined,
      breakerFailure: true,
    });
  }
  if (status === 408) {
    // The service gave up waiting for the request before reading it (RFC 9110 §15.5.9; also what
    // a server sends on a kept-alive connection it is closing): not processed, so safe to send again,
    // a note create too. Counted by the breaker like a 5xx: a service that keeps timing out is down.
    throw new UpstreamError('UPSTREAM_UNAVAILABLE', req.service, `${req.service}: ${where} answered 408 (request timeout)${snippet ? `: ${snippet}` : ''}`, {
      httpStatus: status,
      transient: true,
      breakerFailure: true,
    });
  }
  if (status >= 300 && status < 400) {
    // A moved endpoint is a setting to correct (its URL), not an outage: neither retried nor held against the breaker.
    const location = response.headers.get('location');
    let to = '';
    try {
      to = location ? ` to ${new URL(location, target).origin}` : '';
    } catch {
      to = ' to an invalid location';
    }
    throw new UpstreamError('UPSTREAM_REJECTED', req.service, `${req.service}: ${where} answered ${status}, a redirect${to}, not followed (set the service's URL to where it points)`, { httpStatus: status });
  }
  if (status >= 400) {
    // The service is up and refused this request (bad key, bad payload): neither retried nor held against the breaker.
    throw new UpstreamError('UPSTREAM_REJECTED', req.service, `${req.service}: ${where} answered ${status}${snippet ? `: ${snippet}` : ''}`, { httpStatus: status });
  }
  let body: unknown = raw;
  if (!req.text) {
    try {
      body = raw === '' ? undefined : JSON.parse(raw);
    } catch {
      throw new UpstreamError('UPSTREAM_INVALID_RESPONSE', req.service, `${req.service}: ${where} answered ${status} with a body that is not JSON: ${snippet}`, { httpStatus: status, breakerFailure: true });
    }
  }
  const parsed = req.schema.safeParse(body);
  if (!parsed.success) {
    throw new UpstreamError('UPSTREAM_INVALID_RESPONSE', req.service, `${req.service}: ${where} answered ${status} with an unexpected body (${issues(parsed.error)})`, { httpStatus: status, breakerFailure: true });
  }
  return { status, value: parsed.data, raw: clean(raw).slice(0, 2_000) };
}
