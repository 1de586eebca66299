import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isPrivateAddress } from '../../../src/scanner/target-guard.js';

/** One request the canary saw: the target host and path the browser asked for. */
export interface CanaryHit {
  method: string;
  host: string;
  path: string;
  /** True for a CONNECT tunnel (https:, wss:) or a WebSocket upgrade. */
  tunnel: boolean;
}

/**
 * The whole "internet" of a scan engine whose egress proxy routes the public test addresses (and
 * any loopback connection) here: every request the browser gets through, to the public hosts or to
 * one it should never reach, arrives here. It also answers requests in proxy form
 * (`--proxy-server=<origin>`), for a browser pointed at it directly. Pages registered for the public test hosts are served;
 * everything else is recorded and answered with a page that says "leaked". Any hit on a path under
 * /canary/ (or a tunnel to a private or test host) is a request the target guard should have stopped.
 */
export interface Canary {
  port: number;
  origin: string;
  readonly hits: CanaryHit[];
  /** Hits on /canary/ paths: requests that must never be made. */
  leaks(): CanaryHit[];
  /** Serves `body` for `path` on the public hosts (any other host gets the leak page). */
  page(path: string, body: string, headers?: Record<string, string>, status?: number): void;
  close(): Promise<void>;
}

export async function startCanary(publicHosts: readonly string[]): Promise<Canary> {
  const hits: CanaryHit[] = [];
  const pages = new Map<string, { body: string; headers: Record<string, string>; status: number }>();
  const server: Server = createServer((req, res) => {
    // A proxied request carries the absolute URL; a direct one only a path and the Host header.
    const target = new URL(req.url ?? '/', `http://${req.headers.host ?? 'unknown'}`);
    hits.push({ method: req.method ?? 'GET', host: target.host, path: target.pathname, tunnel: false });
    const known = publicHosts.includes(target.hostname) ? pages.get(target.pathname) : undefined;
    if (known) {
      res.writeHead(known.status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', ...known.headers });
      res.end(known.body);
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end('<!doctype html><html lang="en"><title>leaked</title><h1>leaked</h1></html>');
  });
  server.on('connect', (req, socket) => {
    const [host = '', port = ''] = (req.url ?? '').split(/:(?=\d+$)/);
    hits.push({ method: 'CONNECT', host: `${host}:${port}`, path: '', tunnel: true });
    socket.destroy();
  });
  server.on('upgrade', (req, socket) => {
    const target = new URL(req.url ?? '/', `http://${req.headers.host ?? 'unknown'}`);
    hits.push({ method: 'UPGRADE', host: target.host, path: target.pathname, tunnel: true });
    socket.destroy();
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', () => ok()));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    origin: `http://127.0.0.1:${port}`,
    hits,
    // A tunnel shows only its host: it leaks when that host is not one of the public test hosts and is private or local.
    leaks: () =>
      hits.filter((h) => {
        if (h.path.startsWith('/canary/')) return true;
        const name = h.host.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
        return h.tunnel && !publicHosts.includes(name) && (isPrivateAddress(name) || !name.includes('.') || name.endsWith('.test'));
      }),
    page: (path, body, headers = {}, status = 200) => void pages.set(path, { body, headers, status }),
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}
