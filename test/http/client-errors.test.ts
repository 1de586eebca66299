import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { startTestService, type TestService } from '../support/service.js';

let redis: RedisServer;
let svc: TestService;
let port: number;

beforeAll(async () => {
  redis = await startRedisServer();
  svc = await startTestService({ redisUrl: redis.url });
  const address = await svc.service.app!.listen({ port: 0, host: '127.0.0.1' });
  port = Number(new URL(address).port);
});

afterAll(async () => {
  await svc?.close();
  await redis?.close();
});

/** Writes `data` on a fresh connection and reads until the server closes it: status, headers (lower-case names) and body. */
function raw(data: Buffer | string): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const [head = '', body = ''] = text.split('\r\n\r\n');
      const [statusLine = '', ...lines] = head.split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const i = line.indexOf(':');
        headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body });
    });
    socket.write(data);
  });
}

describe('requests the HTTP parser refuses (no request, no hook)', () => {
  it('answer problem+json with the request id and the same security headers as every other answer', async () => {
    const cases: Array<[string, Buffer | string, number, string]> = [
      ['headers over the limit', `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431, 'HEADERS_TOO_LARGE'],
      ['not HTTP at all', 'GARBAGE\r\n\r\n', 400, 'BAD_REQUEST'],
    ];
    for (const [what, data, status, code] of cases) {
      const res = await raw(data);
      expect(res.status, what).toBe(status);
      expect(res.headers['content-type'], what).toBe('application/problem+json; charset=utf-8');
      const body = JSON.parse(res.body) as Record<string, unknown>;
      expect(body, what).toMatchObject({ status, code, type: `urn:wcagai:problem:${code.toLowerCase().replace(/_/g, '-')}` });
      expect(res.headers['x-request-id'], what).toBe(body.requestId);
      expect(res.headers['x-content-type-options'], what).toBe('nosniff');
      expect(res.headers['x-frame-options'], what).toBe('DENY');
      expect(res.headers['referrer-policy'], what).toBe('no-referrer');
      expect(res.headers['content-security-policy'], what).toContain("frame-ancestors 'none'");
      expect(res.headers['cache-control'], what).toBe('no-store');
    }
  });
});
