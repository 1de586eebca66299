import { Agent, request, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import { connect } from 'node:net';

/** One answer, as raw as a client sees it. */
export interface RawAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  ms: number;
}

export interface SendOptions {
  method: string;
  path: string;
  headers?: OutgoingHttpHeaders;
  body?: string | Buffer;
  /** Give up (and report status 0) after this long. */
  timeoutMs?: number;
  /** Stop reading an event stream once its head arrives (a stream never ends); other answers are read whole. */
  headOnly?: boolean;
}

/**
 * Sends requests over keep-alive connections (at most `sockets` at once) with node:http, so any
 * method, header or body goes out as given. A request whose reused keep-alive socket was closed by
 * the server's idle timeout before it got any answer (the race every keep-alive client has, which
 * Node's documentation answers with a retry) is sent once more on a fresh connection; `resets`
 * counts those. A fresh connection that hangs up is reported as it is (status 0).
 */
export function httpClient(base: string, sockets = 16) {
  const agent = new Agent({ keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets });
  const { hostname, port } = new URL(base);
  let resets = 0;
  const attempt = (o: SendOptions, via: Agent | false): Promise<RawAnswer & { staleSocket?: boolean }> =>
    new Promise((resolve) => {
      const started = performance.now();
      let settled = false;
      const done = (a: Omit<RawAnswer, 'ms'> & { staleSocket?: boolean }) => {
        if (settled) return;
        settled = true;
        resolve({ ...a, ms: performance.now() - started });
      };
      const req = request({ host: hostname, port, method: o.method, path: o.path, headers: o.headers ?? {}, agent: via, timeout: o.timeoutMs ?? 15_000 }, (res) => {
        if (o.headOnly && String(res.headers['content-type'] ?? '').startsWith('text/event-stream')) {
          done({ status: res.statusCode ?? 0, headers: res.headers, body: '' });
          res.destroy();
          return;
        }
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => done({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', (err) => done({ status: 0, headers: res.headers, body: `response error: ${err.message}` }));
      });
      req.on('timeout', () => req.destroy(new Error('client timeout')));
      req.on('error', (err: NodeJS.ErrnoException) =>
        done({ status: 0, headers: {}, body: `request error: ${err.message}`, staleSocket: req.reusedSocket && err.code === 'ECONNRESET' }),
      );
      if (o.body !== undefined) req.end(o.body);
      else req.end();
    });
  const send = async (o: SendOptions): Promise<RawAnswer> => {
    const { staleSocket, ...answer } = await attempt(o, agent);
    if (!staleSocket) return answer;
    resets++;
    const { staleSocket: _, ...retried } = await attempt(o, false);
    return retried;
  };
  return { send, resets: () => resets, close: () => agent.destroy() };
}

/** Writes raw bytes on a fresh connection and reads until the server closes it or `timeoutMs` passes. */
export function rawExchange(port: number, bytes: Buffer | string, timeoutMs = 5_000): Promise<{ text: string; closedByServer: boolean; ms: number }> {
  return new Promise((resolve) => {
    const started = performance.now();
    const socket = connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    let settled = false;
    const done = (closedByServer: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closedByServer, ms: performance.now() - started });
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.on('connect', () => socket.end(bytes));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => done(true));
    socket.on('close', () => done(true));
    socket.on('error', () => done(true));
  });
}

/** The status, headers and body of the first response in raw HTTP/1.1 text (null when there is none). */
export function parseRawResponse(text: string): { status: number; headers: IncomingHttpHeaders; body: string } | null {
  const m = /^HTTP\/1\.[01] (\d{3})[^\r\n]*\r\n/.exec(text);
  if (!m) return null;
  const end = text.indexOf('\r\n\r\n');
  const head = text.slice(0, end < 0 ? text.length : end).split('\r\n').slice(1);
  const headers: IncomingHttpHeaders = {};
  for (const line of head) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  let body = end < 0 ? '' : text.slice(end + 4);
  const length = Number(headers['content-length']);
  if (Number.isFinite(length)) body = body.slice(0, length);
  else if (/chunked/i.test(String(headers['transfer-encoding'] ?? ''))) body = dechunk(body);
  return { status: Number(m[1]), headers, body };
}

function dechunk(text: string): string {
  let out = '';
  let rest = text;
  for (let i = 0; i < 10_000; i++) {
    const eol = rest.indexOf('\r\n');
    if (eol < 0) break;
    const size = parseInt(rest.slice(0, eol), 16);
    if (!Number.isFinite(size) || size === 0) break;
    out += rest.slice(eol + 2, eol + 2 + size);
    rest = rest.slice(eol + 2 + size + 2);
  }
  return out;
}

/** The p-th percentile (0-100) of `values`, nearest rank. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}
