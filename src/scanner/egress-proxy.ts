import { createServer, request as httpRequest, Agent, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect, isIP, type AddressInfo, type Socket } from 'node:net';
import { WcagaiError } from '../errors/catalogue.js';
import { checkTarget } from './target-guard.js';
import type { TargetPolicy } from './types.js';

/**
 * The browser's only way out when private targets are refused. Checking a request's host and
 * then letting Chromium resolve it again leaves a window: a name can answer a public address to
 * the check and a private one to the browser a moment later (DNS rebinding). Through this proxy
 * Chromium resolves nothing itself: the proxy resolves each host once, refuses private answers,
 * and connects to the very address it checked. Plain HTTP is forwarded (absolute-form requests),
 * HTTPS and WebSockets go through CONNECT tunnels; loopback is proxied too (`<-loopback>`).
 */
export interface EgressProxy {
  /** Chromium flags that send every request through the proxy. */
  readonly args: readonly string[];
  /** Why the proxy refused `host` in the last minute, if it did (its host name, as requested). */
  refusal(host: string): WcagaiError | undefined;
  close(): Promise<void>;
}

const REFUSALS_KEPT_MS = 60_000;
/**
 * A tunnel the far end neither accepts nor refuses (an unrouted address) is given up after this.
 * Once connected there is no deadline here: the browser's own deadlines close the connection.
 */
const CONNECT_TIMEOUT_MS = 20_000;
const HOP_BY_HOP = ['proxy-connection', 'proxy-authorization', 'connection', 'keep-alive', 'te', 'trailer', 'upgrade'];

/** host:port of a CONNECT request line (`[::1]:443`, `example.com:443`). */
function splitAuthority(authority: string): { host: string; port: number } | null {
  const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(authority);
  if (!m) return null;
  const port = Number(m[2]);
  return port > 0 && port < 65_536 ? { host: m[1]!, port } : null;
}

/**
 * Where a checked address is reached: itself, unless `route` says otherwise. Only tests and lab
 * setups set it (a public test address served by a loopback fixture, as a NAT would).
 */
export type EgressRoute = (address: string) => string;

export async function startEgressProxy(policy: TargetPolicy, route: EgressRoute = (a) => a): Promise<EgressProxy> {
  const refusals = new Map<string, { error: WcagaiError; at: number }>();
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const sockets = new Set<Socket>();

  /** The address to connect to for host:port: the one the check resolved, never a second look-up. */
  async function pinned(host: string, port: number, scheme: 'http' | 'https'): Promise<string> {
    const bare = host.replace(/^\[|\]$/g, '');
    try {
      const checked = await checkTarget(`${scheme}://${isIP(bare) === 6 ? `[${bare}]` : bare}:${port}/`, policy);
      // Empty when the host is explicitly allowed (SCAN_ALLOWED_HOSTS): connect by name.
      return route(checked[0] ?? bare);
    } catch (err) {
      const error = err instanceof WcagaiError ? err : new WcagaiError('BLOCKED_TARGET', `${host}: ${(err as Error).message}`);
      refusals.set(bare.toLowerCase(), { error, at: Date.now() });
      if (refusals.size > 1_000) refusals.delete(refusals.keys().next().value!);
      throw error;
    }
  }

  const refuse = (res: ServerResponse, err: unknown) => {
    const error = err instanceof WcagaiError ? err : null;
    const status = error?.code === 'BLOCKED_TARGET' ? 403 : 502;
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'x-wcagai-egress': error?.code ?? 'UPSTREAM_FAILED', connection: 'close' });
    res.end(error?.message ?? 'upstream failed');
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let target: URL;
    try {
      target = new URL(req.url ?? '');
      if (target.protocol !== 'http:') throw new Error('not an http URL');
    } catch {
      res.writeHead(400, { connection: 'close' }).end('absolute http URL expected');
      return;
    }
    const port = Number(target.port || 80);
    pinned(target.hostname, port, 'http').then(
      (address) => {
        const headers: Record<string, string | string[]> = {};
        for (const [name, value] of Object.entries(req.headers)) if (value !== undefined && !HOP_BY_HOP.includes(name)) headers[name] = value;
        const upstream = httpRequest({ host: address, port, method: req.method, path: `${target.pathname}${target.search}`, headers, agent, setHost: false }, (answer) => {
          const out: Record<string, string | string[]> = {};
          for (const [name, value] of Object.entries(answer.headers)) if (value !== undefined && !HOP_BY_HOP.includes(name)) out[name] = value;
          res.writeHead(answer.statusCode ?? 502, answer.statusMessage, out);
          answer.pipe(res);
          answer.on('error', () => res.destroy());
        });
        upstream.on('error', (err) => (res.headersSent ? res.destroy() : refuse(res, err)));
        res.on('close', () => upstream.destroy());
        req.pipe(upstream);
      },
      (err: unknown) => refuse(res, err),
    );
  });

  server.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => client.destroy());
    const authority = splitAuthority(req.url ?? '');
    if (!authority) {
      client.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
      return;
    }
    pinned(authority.host, authority.port, 'https').then(
      (address) => {
        const upstream = connect({ host: address, port: authority.port, timeout: CONNECT_TIMEOUT_MS }, () => {
          upstream.setTimeout(0);
          client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
          if (head.length) upstream.write(head);
          upstream.pipe(client);
          client.pipe(upstream);
        });
        sockets.add(upstream);
        upstream.on('timeout', () => upstream.destroy(new Error('connect timed out')));
        upstream.on('close', () => {
          sockets.delete(upstream);
          client.destroy();
        });
        upstream.on('error', () => {
          if (!client.destroyed && client.bytesWritten === 0) client.end('HTTP/1.1 502 Bad Gateway\r\nconnection: close\r\n\r\n');
          else client.destroy();
        });
        client.on('close', () => upstream.destroy());
      },
      (err: unknown) => {
        const status = err instanceof WcagaiError && err.code === 'BLOCKED_TARGET' ? '403 Forbidden' : '502 Bad Gateway';
        client.end(`HTTP/1.1 ${status}\r\nconnection: close\r\n\r\n`);
      },
    );
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.on('clientError', (_err, socket) => socket.destroy());

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    args: [`--proxy-server=http://127.0.0.1:${port}`, '--proxy-bypass-list=<-loopback>'],
    refusal(host) {
      const key = host.replace(/^\[|\]$/g, '').toLowerCase();
      const hit = refusals.get(key);
      if (!hit) return undefined;
      if (Date.now() - hit.at > REFUSALS_KEPT_MS) {
        refusals.delete(key);
        return undefined;
      }
      return hit.error;
    },
    async close() {
      agent.destroy();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
