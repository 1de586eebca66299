import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  /** Path without the query string. */
  path: string;
  /** Path with the query string, as sent. */
  url: string;
  /** The Host header, e.g. `localhost:1234`. */
  host: string;
  headers: IncomingHttpHeaders;
  /** True for a protocol upgrade (WebSocket handshake); the server refuses those after recording them. */
  upgrade?: boolean;
}

export type Handler = (req: IncomingMessage, res: ServerResponse) => void;

export interface ResponseOptions {
  status?: number;
  headers?: Record<string, string | string[]>;
  /** Wait this long before sending anything (status line included). */
  delayMs?: number;
}

export interface FixtureServer {
  port: number;
  /** `http://127.0.0.1:PORT`. */
  origin: string;
  /** Absolute URL of `path` on this server under another host name (`localhost`, a mapped name). */
  url(path: string, host?: string): string;
  /** Every request received so far, in order. */
  readonly requests: RecordedRequest[];
  /** Requests received for one path (query ignored). */
  requestsTo(path: string): RecordedRequest[];
  route(path: string, handler: Handler): FixtureServer;
  html(path: string, body: string, options?: ResponseOptions): FixtureServer;
  /** Any content type, e.g. `text/plain` or `application/pdf`. */
  body(path: string, contentType: string, body: string | Buffer, options?: ResponseOptions): FixtureServer;
  redirect(path: string, location: string, status?: number): FixtureServer;
  /** Accepts the request and never answers (until the server closes). */
  hang(path: string): FixtureServer;
  close(): Promise<void>;
}

function send(res: ServerResponse, contentType: string, body: string | Buffer, options: ResponseOptions = {}): void {
  const write = (): void => {
    if (res.destroyed) return;
    res.writeHead(options.status ?? 200, { 'content-type': contentType, 'cache-control': 'no-store', ...options.headers });
    res.end(body);
  };
  if (options.delayMs) setTimeout(write, options.delayMs);
  else write();
}

/**
 * A programmable HTTP server on 127.0.0.1, port 0: tests register routes by path and read back the
 * requests it received (headers included). Unknown paths answer 404. `close()` drops open connections,
 * hanging ones included.
 */
export async function startFixtureServer(): Promise<FixtureServer> {
  const routes = new Map<string, Handler>();
  const requests: RecordedRequest[] = [];
  const server: Server = createServer((req, res) => {
    const url = req.url ?? '/';
    const path = new URL(url, 'http://localhost').pathname;
    requests.push({ method: req.method ?? 'GET', path, url, host: req.headers.host ?? '', headers: req.headers });
    const handler = routes.get(path);
    if (!handler) {
      send(res, 'text/html; charset=utf-8', '<!doctype html><html lang="en"><title>Not found</title><h1>Not found</h1></html>', { status: 404 });
      return;
    }
    try {
      handler(req, res);
    } catch (err) {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(String(err));
    }
  });
  server.on('upgrade', (req, socket) => {
    const url = req.url ?? '/';
    const path = new URL(url, 'http://localhost').pathname;
    requests.push({ method: req.method ?? 'GET', path, url, host: req.headers.host ?? '', headers: req.headers, upgrade: true });
    socket.destroy();
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => ok());
  });
  const port = (server.address() as AddressInfo).port;
  const fixture: FixtureServer = {
    port,
    origin: `http://127.0.0.1:${port}`,
    url: (path, host = '127.0.0.1') => `http://${host}:${port}${path.startsWith('/') ? path : `/${path}`}`,
    requests,
    requestsTo: (path) => requests.filter((r) => r.path === path),
    route(path, handler) {
      routes.set(path, handler);
      return fixture;
    },
    html: (path, body, options) => fixture.route(path, (_req, res) => send(res, 'text/html; charset=utf-8', body, options)),
    body: (path, contentType, body, options) => fixture.route(path, (_req, res) => send(res, contentType, body, options)),
    redirect: (path, location, status = 302) =>
      fixture.route(path, (_req, res) => {
        res.writeHead(status, { location, 'cache-control': 'no-store' }).end();
      }),
    hang: (path) => fixture.route(path, () => undefined),
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
  return fixture;
}

/** A minimal, otherwise clean HTML document around `body` (lang, title, main landmark). */
export function page(body: string, head = ''): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Fixture</title>${head}</head><body><main>${body}</main></body></html>`;
}
