import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The fixture website's files (`scenarios/sites/` at the package root). */
export const SITES_DIR = fileURLToPath(new URL('../../scenarios/sites/', import.meta.url));

/** Pages of the fixture site by what they exercise. */
export const FIXTURE_PAGES = Object.freeze({
  index: '/index.html',
  clean: '/clean.html',
  form: '/form.html',
  violations: '/violations.html',
  heavy: '/heavy.html',
  spa: '/spa.html',
  iframe: '/iframe.html',
  /** Answers after `?ms=N` (default 1500, at most 60000). */
  slow: '/slow.html',
  /** Answers 500. */
  error: '/error.html',
  /** Accepts the request and never answers. */
  hang: '/hang.html',
});

/** Pages every scan of which should succeed: what `leak` scans by default. */
export const HEALTHY_PAGES: readonly string[] = [FIXTURE_PAGES.clean, FIXTURE_PAGES.violations, FIXTURE_PAGES.heavy, FIXTURE_PAGES.spa, FIXTURE_PAGES.iframe, FIXTURE_PAGES.form];

export interface FixtureSite {
  /** `http://127.0.0.1:PORT`. */
  origin: string;
  /** Absolute URL of a path on the site. */
  url(path: string): string;
  /** Requests served so far. */
  readonly requests: number;
  close(): Promise<void>;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.json': 'application/json',
};

/** `<!-- repeat N -->…{{i}}…<!-- /repeat -->` blocks, expanded once: heavy pages stay small on disk. */
export function expandRepeats(html: string): string {
  return html.replace(/<!--\s*repeat\s+(\d+)\s*-->\n?([\s\S]*?)<!--\s*\/repeat\s*-->\n?/g, (_m, n: string, block: string) => {
    const times = Math.min(Number(n), 100_000);
    let out = '';
    for (let i = 1; i <= times; i++) out += block.replaceAll('{{i}}', String(i));
    return out;
  });
}

const PAGE_500 = '<!doctype html><html lang="en"><head><title>Server error</title></head><body><main><h1>500: the fixture server failed on purpose</h1></main></body></html>';

/** Serves the fixture site on loopback (port 0 by default) with the slow, 500 and hanging routes. */
export async function startFixtureSite(options: { dir?: string; host?: string; port?: number } = {}): Promise<FixtureSite> {
  const dir = options.dir ?? SITES_DIR;
  const cache = new Map<string, Buffer>();
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let requests = 0;

  const load = async (rel: string): Promise<Buffer | null> => {
    const hit = cache.get(rel);
    if (hit) return hit;
    try {
      const raw = await readFile(join(dir, rel));
      const body = extname(rel) === '.html' ? Buffer.from(expandRepeats(raw.toString('utf8'))) : raw;
      cache.set(rel, body);
      return body;
    } catch {
      return null;
    }
  };

  const send = (res: ServerResponse, status: number, type: string, body: Buffer | string) => {
    if (res.destroyed) return;
    res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    requests++;
    const url = new URL(req.url ?? '/', 'http://fixture.invalid');
    let path: string;
    try {
      path = decodeURIComponent(url.pathname);
    } catch {
      return send(res, 400, TYPES['.html']!, 'bad path');
    }
    if (path === FIXTURE_PAGES.hang) return; // held open until close() drops the socket
    if (path === FIXTURE_PAGES.error) return send(res, 500, TYPES['.html']!, PAGE_500);
    if (path === FIXTURE_PAGES.slow) {
      const ms = Math.min(Math.max(Number(url.searchParams.get('ms') ?? 1_500) || 0, 0), 60_000);
      const body = (await load('clean.html')) ?? Buffer.from('');
      const timer = setTimeout(() => {
        timers.delete(timer);
        send(res, 200, TYPES['.html']!, body);
      }, ms);
      timers.add(timer);
      return;
    }
    const rel = normalize(path === '/' ? 'index.html' : path.slice(1));
    if (rel.startsWith('..') || rel.includes(`${sep}..`) || rel.includes('\0')) return send(res, 404, TYPES['.html']!, 'not found');
    const body = await load(rel);
    if (!body) return send(res, 404, TYPES['.html']!, '<!doctype html><html lang="en"><head><title>Not found</title></head><body><h1>Not found</h1></body></html>');
    send(res, 200, TYPES[extname(rel)] ?? 'application/octet-stream', body);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch(() => send(res, 500, 'text/plain', 'fixture error'));
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  // The hanging page must not keep a scan's connection alive past the server's life, nor be cut by Node's defaults.
  server.requestTimeout = 0;
  server.headersTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const { port, address } = server.address() as AddressInfo;
  const origin = `http://${address.includes(':') ? `[${address}]` : address}:${port}`;
  let closed: Promise<void> | null = null;
  return {
    origin,
    url: (p) => new URL(p, origin).href,
    get requests() {
      return requests;
    },
    close() {
      closed ??= new Promise<void>((resolve) => {
        for (const t of timers) clearTimeout(t);
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
      return closed;
    },
  };
}
