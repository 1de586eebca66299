/**
 * The egress proxy on its own, over real sockets on loopback: CONNECT tunnels and forwarded HTTP go
 * to the address the target check resolved (routed to loopback here, as a NAT would), and names
 * that resolve to private addresses are refused with the reason kept for the engine.
 */
import { createServer as createHttpServer, request, type Server } from 'node:http';
import { connect, createServer, type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEgressProxy, type EgressProxy } from '../../src/scanner/egress-proxy.js';

const DNS: Record<string, string[]> = {
  'shop.example.test': ['93.184.216.34'],
  'inside.example.test': ['10.1.2.3'],
  // The first address refuses (routed to a loopback address nothing listens on), the second answers.
  'multi.example.test': ['93.184.216.50', '93.184.216.34'],
};
const ROUTES: Record<string, string> = { '93.184.216.34': '127.0.0.1', '93.184.216.50': '127.0.0.3' };

describe('egress proxy', () => {
  let proxy: EgressProxy;
  let proxyPort: number;
  let echoPort: number;
  let webPort: number;
  const servers: Server[] = [];
  const lookups: string[] = [];
  const hosts: string[] = [];

  beforeAll(async () => {
    const echo = createServer((socket) => socket.pipe(socket));
    const web = createHttpServer((req, res) => {
      hosts.push(req.headers.host ?? '');
      res.writeHead(200, { 'content-type': 'text/plain' }).end(`hello ${req.url}`);
    });
    for (const s of [echo, web]) {
      await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
      servers.push(s as Server);
    }
    echoPort = (echo.address() as AddressInfo).port;
    webPort = (web.address() as AddressInfo).port;
    proxy = await startEgressProxy(
      {
        allowPrivate: false,
        allowedHosts: [],
        resolve: async (host) => {
          lookups.push(host);
          return DNS[host] ?? [];
        },
      },
      (address) => ROUTES[address] ?? address,
    );
    proxyPort = Number(/:(\d+)$/.exec(proxy.args[0]!)![1]);
    expect(proxy.args).toContain('--proxy-bypass-list=<-loopback>');
  });

  afterAll(async () => {
    await proxy?.close();
    for (const s of servers) await new Promise((r) => s.close(r));
  });

  /** Sends a CONNECT for `authority` and returns the status line, plus what an echo of `payload` brought back. */
  function tunnel(authority: string, payload = 'ping'): Promise<{ status: string; echoed: string }> {
    return new Promise((resolve, reject) => {
      const socket = connect(proxyPort, '127.0.0.1', () => socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`));
      let buffer = '';
      let status = '';
      socket.on('data', (chunk) => {
        buffer += chunk.toString();
        if (!status && buffer.includes('\r\n\r\n')) {
          status = buffer.split('\r\n')[0]!;
          buffer = buffer.slice(buffer.indexOf('\r\n\r\n') + 4);
          if (status.includes(' 200 ')) socket.write(payload);
        }
        if (status.includes(' 200 ') && buffer === payload) {
          socket.end();
          resolve({ status, echoed: buffer });
        }
      });
      socket.on('end', () => resolve({ status, echoed: buffer }));
      socket.on('error', reject);
    });
  }

  function viaProxy(url: string): Promise<{ status: number; egress: string | undefined; body: string }> {
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: proxyPort, path: url, headers: { host: new URL(url).host } }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, egress: res.headers['x-wcagai-egress'] as string | undefined, body }));
      });
      req.on('error', reject);
      req.end();
    });
  }

  it('tunnels CONNECT to the checked address of a public name', async () => {
    const { status, echoed } = await tunnel(`shop.example.test:${echoPort}`);
    expect(status).toBe('HTTP/1.1 200 Connection Established');
    expect(echoed).toBe('ping');
    expect(lookups).toContain('shop.example.test');
  });

  it('refuses CONNECT to private names and addresses, and remembers why', async () => {
    for (const authority of [`inside.example.test:${echoPort}`, `127.0.0.1:${echoPort}`, `[::1]:${echoPort}`, `localhost:${echoPort}`]) {
      const { status, echoed } = await tunnel(authority);
      expect(status, authority).toBe('HTTP/1.1 403 Forbidden');
      expect(echoed, authority).toBe('');
    }
    expect(proxy.refusal('inside.example.test')).toMatchObject({ code: 'BLOCKED_TARGET' });
    expect(proxy.refusal('[::1]')).toMatchObject({ code: 'BLOCKED_TARGET' });
    expect(proxy.refusal('shop.example.test')).toBeUndefined();
    expect((await tunnel('no-port-here')).status).toBe('HTTP/1.1 400 Bad Request');
  });

  it('forwards plain HTTP to the checked address with the Host header kept, and refuses private ones with a coded 403', async () => {
    const ok = await viaProxy(`http://shop.example.test:${webPort}/page?q=1`);
    expect(ok).toMatchObject({ status: 200, body: 'hello /page?q=1' });
    expect(hosts).toContain(`shop.example.test:${webPort}`);
    const refused = await viaProxy(`http://inside.example.test:${webPort}/secret`);
    expect(refused).toMatchObject({ status: 403, egress: 'BLOCKED_TARGET' });
    expect(hosts.filter((h) => h.startsWith('inside'))).toEqual([]);
    // A public name with nothing behind it: a coded 502, not a hang.
    DNS['gone.example.test'] = ['93.184.216.34'];
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const closedPort = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    expect(await viaProxy(`http://gone.example.test:${closedPort}/`)).toMatchObject({ status: 502, egress: 'UPSTREAM_FAILED' });
  });

  it('tries the next checked address when one refuses, for tunnels and forwarded HTTP', async () => {
    expect((await tunnel(`multi.example.test:${echoPort}`)).echoed).toBe('ping');
    expect(await viaProxy(`http://multi.example.test:${webPort}/multi`)).toMatchObject({ status: 200, body: 'hello /multi' });
  });

  it('survives a site whose status line carries bytes Node would not write back', async () => {
    const raw = createServer((socket) => {
      socket.once('data', () => socket.end('HTTP/1.1 200 O\x01K\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok'));
    });
    await new Promise<void>((r) => raw.listen(0, '127.0.0.1', r));
    servers.push(raw as unknown as Server);
    const rawPort = (raw.address() as AddressInfo).port;
    expect(await viaProxy(`http://shop.example.test:${rawPort}/odd`)).toMatchObject({ status: 200, body: 'ok' });
    // Still serving.
    expect((await viaProxy(`http://shop.example.test:${webPort}/after`)).status).toBe(200);
  });
});
