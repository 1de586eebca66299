import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { isWcagaiError } from '../../src/errors/catalogue.js';
import { createLogger } from '../../src/observability/logger.js';
import { startService } from '../../src/app/service.js';
import { RedisNotReadyError, redisStartError } from '../../src/queue/redis.js';
import { freePort } from '../support/net.js';
import { startLockedRedisServer, type RedisServer } from '../support/redis-server.js';
import { baseEnv, LogSink, TEST_SETTINGS, uniquePrefix } from '../support/service.js';

let secured: RedisServer | undefined;

afterAll(async () => {
  await secured?.close();
});

/** The error `startService` fails with for REDIS_URL `redisUrl`, and how long it took. */
async function startFailure(redisUrl: string): Promise<{ err: unknown; ms: number }> {
  const env = baseEnv();
  const config = loadConfig(env, { ...TEST_SETTINGS, REDIS_URL: redisUrl, QUEUE_PREFIX: uniquePrefix('nored') });
  const logger = createLogger({ level: 'warn', destination: new LogSink() });
  const started = Date.now();
  const err = await startService(config, logger, { api: true, workerConcurrency: 0, env }).then(
    async (service) => {
      await service.close(5_000);
      return null;
    },
    (e: unknown) => e,
  );
  expect(err).not.toBeNull();
  expect(isWcagaiError(err), String(err)).toBe(true);
  expect((err as { code: string }).code).toBe('REDIS_UNAVAILABLE');
  return { err, ms: Date.now() - started };
}

describe('startService with Redis unusable', () => {
  it('fails with REDIS_UNAVAILABLE naming the Redis address (password masked) and the connection error, not an unexpected error', async () => {
    const port = await freePort();
    const { err } = await startFailure(`redis://:s3cretpw@127.0.0.1:${port}/0`);
    const message = (err as Error).message;
    expect(message).toContain(`cannot reach Redis at redis://***@127.0.0.1:${port}/0 within 10 s (connect ECONNREFUSED 127.0.0.1:${port})`);
    expect(message).not.toContain('s3cretpw');
  }, 30_000);

  it('a password the server refuses, or none where one is required, fails at once saying so (not after the start timeout)', async () => {
    secured = await startLockedRedisServer('right-pass');
    const port = new URL(secured.url).port;

    const wrong = await startFailure(`redis://:wr0ngpass@127.0.0.1:${port}/0`);
    expect((wrong.err as Error).message).toMatch(new RegExp(`^Redis at redis://\\*\\*\\*@127\\.0\\.0\\.1:${port}/0 refused the credentials \\(WRONGPASS [^)]*\\); check the password in REDIS_URL$`));
    expect((wrong.err as Error).message).not.toContain('wr0ngpass');
    expect(wrong.ms).toBeLessThan(8_000);

    const none = await startFailure(`redis://127.0.0.1:${port}/0`);
    expect((none.err as Error).message).toMatch(/ requires a password \(NOAUTH [^)]*\); check the password in REDIS_URL$/);
    expect(none.ms).toBeLessThan(8_000);
  }, 60_000);
});

describe('redisStartError', () => {
  it('names the sentinels\' own password setting when the target is behind Sentinel', () => {
    const sentinel = { mode: 'sentinel' as const, url: 'redis://:pw@127.0.0.1:6379/0', sentinels: [{ host: '127.0.0.1', port: 26379 }], name: 'mymaster' };
    const auth = new RedisNotReadyError(10_000, 'WRONGPASS invalid username-password pair or user is disabled.', true);
    expect(redisStartError(sentinel, auth, 'check REDIS_URL').message).toMatch(/refused the credentials \(WRONGPASS [^)]*\); check the password in REDIS_URL \(the master\) and REDIS_SENTINEL_PASSWORD \(the sentinels\)$/);
    const plain = { mode: 'standalone' as const, url: 'redis://127.0.0.1:6379/0' };
    expect(redisStartError(plain, auth, 'check REDIS_URL').message).toMatch(/; check the password in REDIS_URL$/);
    expect(redisStartError(plain, new RedisNotReadyError(5_000, 'connect ECONNREFUSED 127.0.0.1:6379'), 'set REDIS_URL').message).toBe('cannot reach Redis at redis://127.0.0.1:6379/0 within 5 s (connect ECONNREFUSED 127.0.0.1:6379); set REDIS_URL');
  });
});
