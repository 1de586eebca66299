import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { startTestService, type TestService } from '../support/service.js';

const ADMIN = 'a-long-enough-admin-token';

describe('admin queue control while Redis is down', () => {
  let redis: RedisServer;
  let svc: TestService;
  beforeAll(async () => {
    redis = await startRedisServer();
    svc = await startTestService({ redisUrl: redis.url, settings: { ADMIN_TOKEN: ADMIN } });
  });
  afterAll(async () => {
    if (redis && redis.pid === null) await redis.restart().catch(() => undefined);
    await svc?.close();
    await redis?.close();
  });

  it('answers pause and resume with 503 REDIS_UNAVAILABLE and Retry-After, not a 500 logged as a bug', async () => {
    await redis.stop();
    for (const action of ['pause', 'resume']) {
      const res = await svc.request({ method: 'POST', url: `/admin/queue/${action}`, headers: { authorization: `Bearer ${ADMIN}` } });
      expect(res.status, `${action}: ${res.body}`).toBe(503);
      expect(res.headers['content-type']).toBe('application/problem+json; charset=utf-8');
      expect(res.json).toMatchObject({ status: 503, code: 'REDIS_UNAVAILABLE', instance: `/admin/queue/${action}` });
      expect(res.headers['retry-after']).toBe('5');
    }
    // An outage is not a server bug: no `http.error` line (nor a Sentry event) for it.
    expect(svc.logs.events('http.error')).toEqual([]);
  });
});
