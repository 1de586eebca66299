import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect, isIP, type AddressInfo, type Socket } from 'node:net';
import { WcagaiError } from '../errors/catalogue.js';
import { bareAddress, checkTarget } from './target-guard.js';
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
  const sockets = new Set<Socket>();

  /**
   * The addresses to connect to for host:port, IPv4 first: the ones the check resolved, never a
   * second look-up (routed; by name only when the host is explicitly allowed).
   */
  async function pinned(host: string, port: number, scheme: 'http' | 'https'): Promise<string[]> {
    const bare = bareAddress(host);
    try {
      const checked = await checkTarget(`${scheme}://${isIP(bare) === 6 ? `[${bare}]` : bare}:${port}/`, policy);
      // Empty when the host is explicitly allowed (SCAN_ALLOWED_HOSTS): connect by name.
      if (checked.length === 0) return [route(bare)];
      return [...checked.filter((a) => isIP(a) === 4), ...checked.filter((a) => isIP(a) !== 4)].map(route);
    } catch (err) {
      const error = err instanceof WcagaiError ? err : new WcagaiError('BLOCKED_TARGET', `${host}: ${(err as Error).message}`);
      refusals.set(bare.toLowerCase(), { error, at: Date.now() });
      if (refusals.size > 1_000) refusals.delete(refusals.keys().next().value!);
      throw error;
    }
  }

  /** A connected socket to the first of `addresses` that accepts, in order. */
  function connectFirst(addresses: readonly string[], port: number, isGone: () => boolean): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const attempt = (i: number, lastError?: Error) => {
        if (isGone()) return reject(new Error('client went away'));
        if (i >= addresses.length) return reject(lastError ?? new Error('no address'));
        const socket = connect({ host: addresses[i]!, port, timeout: CONNECT_TIMEOUT_MS });
        sockets.add(socket);
        socket.once('close', () => sockets.delete(socket));
        const fail = (err: Error) => {
          socket.destroy();
          attempt(i + 1, err);
        };
        socket.once('error', fail);
        socket.once('timeout', () => fail(new Error(`connect to ${addresses[i]} timed out`)));
        socket.once('connect', () => {
          socket.setTimeout(0);
          socket.off('error', fail);
          socket.removeAllListeners('timeout');
          resolve(socket);
        });
      };
      attempt(0);
    });
  }

  const refuse = (res: ServerResponse, err: unknown) => {
    if (res.headersSent || res.destroyed) return void res.destroy();
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
    let upstream: ReturnType<typeof httpRequest> | null = null;
    res.on('close', () => upstream?.destroy());
    const port = Number(target.port || 80);
    const headers: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(req.headers)) if (value !== undefined && !HOP_BY_HOP.includes(name)) headers[name] = value;
    pinned(target.hostname, port, 'http')
      .then((addresses) =>
        connectFirst(addresses, port, () => res.destroyed).then((socket) => {
          if (res.destroyed) return void socket.destroy();
          // The connection is to the checked address; the request keeps the page's Host header.
          // With createConnection and no agent, Node pools nothing: the socket serves this request only.
          const request = httpRequest({ createConnection: () => socket, method: req.method, path: `${target.pathname}${target.search}`, headers, setHost: false }, (answer) => {
            const out: Record<string, string | string[]> = {};
            for (const [name, value] of Object.entries(answer.headers)) if (value !== undefined && !HOP_BY_HOP.includes(name)) out[name] = value;
            try {
              // The site's own reason phrase is not repeated: it may hold bytes Node refuses to write.
              res.writeHead(answer.statusCode ?? 502, out);
            } catch {
              return void res.destroy();
            }
            answer.pipe(res);
            answer.on('error', () => res.destroy());
          });
          upstream = request;
          request.on('error', (err) => refuse(res, err));
          req.pipe(request);
        }),
      )
      .catch((err: unknown) => refuse(res, err));
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
    pinned(authority.host, authority.port, 'https')
      .then(
        (addresses) => connectFirst(addresses, authority.port, () => client.destroyed),
        (err: unknown) => {
          const status = err instanceof WcagaiError && err.code === 'BLOCKED_TARGET' ? '403 Forbidden' : '502 Bad Gateway';
          client.end(`HTTP/1.1 ${status}\r\nconnection: close\r\n\r\n`);
          return null;
        },
      )
      .then(
        (upstream) => {
          if (!upstream) return;
          if (client.destroyed) return void upstream.destroy();
          upstream.on('error', () => client.destroy());
          upstream.on('close', () => client.destroy());
          client.on('close', () => upstream.destroy());
          client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
          if (head.length) upstream.write(head);
          upstream.pipe(client);
          client.pipe(upstream);
        },
        () => {
          if (!client.destroyed) client.end('HTTP/1.1 502 Bad Gateway\r\nconnection: close\r\n\r\n');
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
    // WebRTC may not use UDP outside the proxy (STUN would reach any address).
    args: [`--proxy-server=http://127.0.0.1:${port}`, '--proxy-bypass-list=<-loopback>', '--force-webrtc-ip-handling-policy=disable_non_proxied_udp'],
    refusal(host) {
      const key = bareAddress(host).toLowerCase();
      const hit = refusals.get(key);
      if (!hit) return undefined;
      if (Date.now() - hit.at > REFUSALS_KEPT_MS) {
        refusals.delete(key);
        return undefined;
      }
      return hit.error;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
