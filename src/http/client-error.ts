import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { ERRORS, type ErrorCode } from '../errors/catalogue.js';
import { requestIdFrom, requestInReading } from './plugins/request-id.js';
import { SECURITY_HEADER_LINES } from './plugins/security-headers.js';
import { PROBLEM_CONTENT_TYPE, problemType } from './problem.js';

const DETAILS: Record<'REQUEST_TIMEOUT' | 'HEADERS_TOO_LARGE' | 'BAD_REQUEST', string> = {
  REQUEST_TIMEOUT: 'the request was not received within the server timeout',
  HEADERS_TOO_LARGE: 'the request header fields exceed the server limit',
  BAD_REQUEST: 'the request is not valid HTTP/1.1',
};

/**
 * Fastify's `clientErrorHandler`: requests Node's HTTP parser refuses (malformed framing, headers
 * over `maxHeaderSize`, headers or body not received in time) never reach a route or hook, and
 * Fastify's default answer is plain JSON. This answers them as problem+json like every other error,
 * with the security headers of every other answer, then closes the connection: a parser that
 * gave up cannot read the next request on it.
 */
export function clientErrorProblem(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const code: keyof typeof DETAILS = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'REQUEST_TIMEOUT' : err.code === 'HPE_HEADER_OVERFLOW' ? 'HEADERS_TOO_LARGE' : 'BAD_REQUEST';
  const spec = ERRORS[code satisfies ErrorCode];
  // A request whose head was read (its body is what failed: a bad chunk, or not all of it in
  // time) has its id already, logged on its "incoming request" line: the answer carries that id
  // and names its path. Otherwise no request line was read reliably: a new id, and the root as instance.
  const request = requestInReading(socket);
  const requestId = request?.id ?? requestIdFrom(undefined);
  const instance = request ? (request.url.split('?')[0] ?? request.url) : '/';
  const body = JSON.stringify({ type: problemType(code), title: spec.title, status: spec.status, detail: DETAILS[code], instance, code, requestId, timestamp: new Date().toISOString() });
  // A HEAD answer has no body (a client would read one as garbage), when the parser got as far as the method.
  const raw = (err as NodeJS.ErrnoException & { rawPacket?: unknown }).rawPacket;
  const head = request ? request.method === 'HEAD' : Buffer.isBuffer(raw) && raw.subarray(0, 5).toString('latin1') === 'HEAD ';
  // A request answered before its body was all read (a 401, a 415) has had its answer: a second
  // one on the connection would be read as the answer to a request the client has not sent.
  const answered = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } | null })._httpMessage?.headersSent === true;
  if (socket.writable && !answered) {
    socket.write(
      `HTTP/1.1 ${spec.status} ${STATUS_CODES[spec.status]}\r\nContent-Type: ${PROBLEM_CONTENT_TYPE}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nX-Request-ID: ${requestId}\r\n${SECURITY_HEADER_LINES}Connection: close\r\n\r\n${head ? '' : body}`,
    );
  }
  socket.destroy(err);
}
