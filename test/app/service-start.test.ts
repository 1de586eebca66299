import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { isWcagaiError } from '../../src/errors/catalogue.js';
import { createLogger } from '../../src/observability/logger.js';
import { startService } from '../../src/app/service.js';
import { freePort } from '../support/net.js';
import { baseEnv, LogSink, TEST_SETTINGS, uniquePrefix } from '../support/service.js';

describe('startService with Redis unreachable', () => {
  it('fails with REDIS_UNAVAILABLE naming the Redis address (password masked), not an unexpected error', async () => {
    const port = await freePort();
    const env = baseEnv();
    const config = loadConfig(env, { ...TEST_SETTINGS, REDIS_URL: `redis://:s3cretpw@127.0.0.1:${port}/0`, QUEUE_PREFIX: uniquePrefix('nored') });
    const logger = createLogger({ level: 'warn', destination: new LogSink() });
    const err = await startService(config, logger, { api: true, workerConcurrency: 0, env }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).not.toBeNull();
    expect(isWcagaiError(err), String(err)).toBe(true);
    expect((err as { code: string }).code).toBe('REDIS_UNAVAILABLE');
    const message = (err as Error).message;
    expect(message).toContain(`cannot reach Redis at redis://***@127.0.0.1:${port}/0`);
    expect(message).not.toContain('s3cretpw');
  }, 30_000);
});
