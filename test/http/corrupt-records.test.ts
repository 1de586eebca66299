import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { startTestService, type TestService } from '../support/service.js';

let redis: RedisServer;
let svc: TestService;

beforeAll(async () => {
  redis = await startRedisServer();
  svc = await startTestService({ redisUrl: redis.url });
});

afterAll(async () => {
  await svc?.close();
  await redis?.close();
});

/**
 * GET `url` with request id `requestId`: a 500 INTERNAL problem without the parse error, and one
 * error line in the log whose message names `id`, and no REDIS_UNAVAILABLE.
 */
async function expectCorrupt(url: string, requestId: string, id: string): Promise<void> {
  const res = await svc.get(url, { 'x-request-id': requestId });
  expect(res.status, res.body).toBe(500);
  expect(res.headers['content-type']).toBe('application/problem+json; charset=utf-8');
  expect(res.json).toMatchObject({ status: 500, code: 'INTERNAL', type: 'urn:wcagai:problem:internal', requestId });
  expect(res.headers['retry-after']).toBeUndefined();
  expect(Object.keys(res.json).sort()).toEqual(['code', 'detail', 'instance', 'requestId', 'status', 'timestamp', 'title', 'type']);
  expect(res.body).not.toMatch(/JSON|position|unavailable/i);
  expect(res.json.detail).not.toMatch(/corrupt|scan_|batch_/);
  const logged = svc.logs.events('http.error', (e) => e.requestId === requestId);
  expect(logged).toHaveLength(1);
  expect(logged[0]!.level).toBe(50);
  expect((logged[0]!.err as { message: string }).message).toContain(id);
  expect((logged[0]!.err as { message: string }).message).toMatch(/not valid JSON/);
  expect(svc.logs.events('http.problem', (e) => e.requestId === requestId)).toEqual([]);
}

describe('a stored record that is not JSON is a 500, not a Redis outage', () => {
  it('a corrupt scan record: GET /api/scans/:id and its report', async () => {
    const { redis: r, keys } = svc.service;
    await r.set(keys.result('scan_corrupt1'), '{"id":"scan_corrupt1","status":');
    await expectCorrupt('/api/scans/scan_corrupt1', 'corrupt-scan', 'scan_corrupt1');
    await expectCorrupt('/api/scans/scan_corrupt1/report?format=json', 'corrupt-report', 'scan_corrupt1');
  });

  it('a corrupt job of a scan with no record yet', async () => {
    const { redis: r, keys } = svc.service;
    await r.hset(`${keys.bullPrefix}:${keys.queueName}:scan_corrupt2`, { name: 'scan', data: '{oops', opts: '{}', timestamp: String(Date.now()) });
    await expectCorrupt('/api/scans/scan_corrupt2', 'corrupt-job', 'scan_corrupt2');
  });

  it('a corrupt batch record, and a batch one of whose scan records is corrupt', async () => {
    const { redis: r, keys } = svc.service;
    await r.set(keys.batch('batch_corrupt1'), 'not json at all');
    await expectCorrupt('/api/batches/batch_corrupt1', 'corrupt-batch', 'batch_corrupt1');
    await r.set(keys.batch('batch_corrupt2'), JSON.stringify({ id: 'batch_corrupt2', createdAt: new Date().toISOString(), ids: ['scan_corrupt3'] }));
    await r.set(keys.result('scan_corrupt3'), '[1,');
    await expectCorrupt('/api/batches/batch_corrupt2', 'corrupt-member', 'scan_corrupt3');
  });

  it('Redis answering all along: readiness stays 200', async () => {
    expect((await svc.get('/health/ready')).status).toBe(200);
  });
});
