import type { IncomingMessage } from 'node:http';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { randomId } from '../../domain/ids.js';
import { runWithContext } from '../../observability/context.js';

const VALID_ID = /^[A-Za-z0-9._:-]{1,128}$/;
/**
 * W3C Trace Context `traceparent`: version, trace id, parent id, flags, in lower-case hex. Version
 * 00 has exactly these four fields; a later version may add fields after another `-`.
 */
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}(-.*)?$/;

/** The caller's X-Request-ID when well formed, else a new `req_<random>`. */
export function requestIdFrom(header: string | string[] | undefined): string {
  const value = Array.isArray(header) ? header[0] : header;
  return value && VALID_ID.test(value) ? value : randomId('req_', 9);
}

/**
 * The trace id of a W3C traceparent header, if valid: version ff, an all-zero trace or parent
 * id, upper-case hex and extra fields on version 00 make the header one to ignore.
 */
export function traceIdFrom(header: string | string[] | undefined): string | undefined {
  const value = (Array.isArray(header) ? header[0] : header)?.trim();
  const m = value ? TRACEPARENT.exec(value) : null;
  if (!m) return undefined;
  const [, version, traceId, parentId, rest] = m;
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined;
  if (/^0+$/.test(traceId!) || /^0+$/.test(parentId!)) return undefined;
  return traceId;
}

declare module 'fastify' {
  interface FastifyRequest {
    traceId?: string;
  }
}

/** A request whose head was read: its id, method and URL. */
export interface RequestInReading {
  id: string;
  method: string;
  url: string;
}

/** The latest request of each connection whose head was read. */
const reading = new WeakMap<object, RequestInReading & { raw: IncomingMessage }>();

/**
 * The request of `socket` whose head was read and whose body has not all arrived, if any: a
 * refusal of the HTTP parser (a bad chunk, the body not received within the request timeout)
 * then belongs to that request, and answers with its id. A request received whole is not
 * returned: a refusal on its connection is of the next one, whose head was never read.
 */
export function requestInReading(socket: object): RequestInReading | undefined {
  const entry = reading.get(socket);
  return entry && !entry.raw.complete ? { id: entry.id, method: entry.method, url: entry.url } : undefined;
}

/**
 * Correlation ids: the request id (Fastify's request.id, from genReqId) is echoed on every answer
 * and carried in AsyncLocalStorage, so every log line and the queued job get it without passing it by hand.
 */
export function requestIdPlugin(app: FastifyInstance): void {
  app.addHook('onRequest', (request: FastifyRequest, reply, done) => {
    const traceId = traceIdFrom(request.headers.traceparent);
    if (traceId) request.traceId = traceId;
    reply.header('x-request-id', request.id);
    const socket = request.raw.socket as object | null | undefined;
    if (socket) reading.set(socket, { raw: request.raw, id: String(request.id), method: request.method, url: request.url });
    runWithContext({ requestId: String(request.id), ...(traceId ? { traceId } : {}) }, done);
  });
}
