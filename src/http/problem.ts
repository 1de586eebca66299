import type { FastifyReply, FastifyRequest } from 'fastify';
import { ERRORS, type ErrorCode, WcagaiError } from '../errors/catalogue.js';
import { FieldProblem } from '../queue/submission.js';

/** One field that failed validation. */
export interface FieldError {
  field: string;
  message: string;
}

/** RFC 9457 problem details, with wcagai's code, request id and timestamp. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance: string;
  code: string;
  requestId: string;
  timestamp: string;
  errors?: FieldError[];
  [extension: string]: unknown;
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json; charset=utf-8';

/** The type URI of an error code, e.g. `urn:wcagai:problem:queue-full`. */
export function problemType(code: string): string {
  return `urn:wcagai:problem:${code.toLowerCase().replace(/_/g, '-')}`;
}

/** A request error carrying the fields that failed validation. */
export class ValidationError extends WcagaiError {
  constructor(readonly errors: FieldError[], message = 'the request has invalid fields') {
    super('VALIDATION_FAILED', `${message}: ${errors.map((e) => `${e.field}: ${e.message}`).join('; ')}`);
  }
}

/** Builds the problem body for a code. */
export function problem(request: FastifyRequest, code: ErrorCode, detail: string, extra: Record<string, unknown> = {}): Problem {
  const spec = ERRORS[code];
  return {
    type: problemType(code),
    title: spec.title,
    status: spec.status,
    detail,
    instance: request.url.split('?')[0] ?? request.url,
    code,
    requestId: String(request.id),
    timestamp: new Date().toISOString(),
    ...extra,
  };
}

/** Sends a problem answer. */
export function sendProblem(reply: FastifyReply, body: Problem, headers: Record<string, string> = {}): FastifyReply {
  for (const [k, v] of Object.entries(headers)) reply.header(k, v);
  return reply.code(body.status).type(PROBLEM_CONTENT_TYPE).send(body);
}

const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'BAD_REQUEST',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'BAD_REQUEST',
  FST_ERR_CTP_INVALID_JSON_BODY: 'BAD_REQUEST',
  FST_ERR_VALIDATION: 'VALIDATION_FAILED',
  FST_ERR_BAD_URL: 'BAD_REQUEST',
  // Every id the API hands out is far shorter than maxParamLength: a longer one names nothing.
  FST_ERR_MAX_PARAM_LENGTH: 'NOT_FOUND',
  FST_ERR_ASYNC_CONSTRAINT: 'BAD_REQUEST',
  FST_ERR_NOT_FOUND: 'NOT_FOUND',
};

const INTERNAL_DETAIL = 'an internal error occurred; the request id identifies it in the logs';

/** Maps any error reaching Fastify's error handler to a code and a client-safe detail. */
/**
 * A Redis failure's own text (ioredis: "connect ECONNREFUSED 10.1.2.3:6379", a replica's READONLY)
 * names the deployment's insides: the log has it, the client a fixed detail.
 */
const REDIS_DETAIL = 'the queue store (Redis) is not answering; try again after Retry-After seconds';

export function classifyHttpError(err: unknown): { code: ErrorCode; detail: string; extra: Record<string, unknown>; headers: Record<string, string>; internal: boolean; logDetail?: string } {
  if (err instanceof ValidationError) return { code: err.code, detail: err.message, extra: { errors: err.errors }, headers: {}, internal: false };
  if (err instanceof WcagaiError) {
    const headers: Record<string, string> = {};
    const retryAfter = err.details?.retryAfterSeconds;
    if (typeof retryAfter === 'number') headers['retry-after'] = String(retryAfter);
    if (typeof err.details?.wwwAuthenticate === 'string') headers['www-authenticate'] = err.details.wwwAuthenticate;
    const extra: Record<string, unknown> = {};
    // An INTERNAL error's message is the server's own (a corrupt stored record, say): the log has it, the client does not.
    if (err.code === 'INTERNAL') return { code: 'INTERNAL', detail: INTERNAL_DETAIL, extra: {}, headers: {}, internal: true };
    // A field problem's item names its field itself: its message without the field it starts with.
    if (err.details?.field) extra.errors = [{ field: String(err.details.field), message: err instanceof FieldProblem ? err.reason : err.message }];
    if (err.code === 'REDIS_UNAVAILABLE') return { code: err.code, detail: REDIS_DETAIL, extra, headers, internal: false, logDetail: err.message };
    return { code: err.code, detail: err.message, extra, headers, internal: false };
  }
  const e = err as { code?: string; statusCode?: number; message?: string };
  const mapped = e.code ? FASTIFY_CODES[e.code] : undefined;
  if (mapped) return { code: mapped, detail: e.message ?? ERRORS[mapped].title, extra: {}, headers: {}, internal: false };
  // A SyntaxError here is the server's own (stored data it could not parse): a client's bad JSON
  // arrives as FST_ERR_CTP_INVALID_JSON_BODY. It falls through to INTERNAL, logged, its text kept from the client.
  if (e.statusCode === 400 && e.message) return { code: 'BAD_REQUEST', detail: e.message ?? 'bad request', extra: {}, headers: {}, internal: false };
  if (e.statusCode === 413) return { code: 'PAYLOAD_TOO_LARGE', detail: e.message ?? 'body too large', extra: {}, headers: {}, internal: false };
  if (e.statusCode === 415) return { code: 'UNSUPPORTED_MEDIA_TYPE', detail: e.message ?? 'unsupported media type', extra: {}, headers: {}, internal: false };
  if (e.statusCode === 429) return { code: 'RATE_LIMITED', detail: e.message ?? 'rate limit exceeded', extra: {}, headers: {}, internal: false };
  if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) return { code: 'BAD_REQUEST', detail: e.message ?? 'bad request', extra: {}, headers: {}, internal: false };
  return { code: 'INTERNAL', detail: INTERNAL_DETAIL, extra: {}, headers: {}, internal: true };
}
