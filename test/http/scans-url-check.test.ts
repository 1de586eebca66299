/**
 * A submitted URL is checked once: the check made without DNS for the 400 that names every bad
 * field goes on, for a host name, with the DNS answer, instead of parsing and checking the URL
 * again. Answers and their messages are those of the target guard itself.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { WcagaiError } from '../../src/errors/catalogue.js';
import type { TargetPolicy } from '../../src/scanner/types.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { startTestService, totalJobs, type TestService } from '../support/service.js';

// Names the fake resolver answers; any other fails as the system resolver would.
const DNS: Record<string, string[]> = {
  'public.wcagai.test': ['93.184.215.14'],
  'public2.wcagai.test': ['93.184.215.15'],
  'private.wcagai.test': ['93.184.215.14', '10.0.0.7'],
};

const counts = vi.hoisted(() => ({ checks: [] as string[] }));

vi.mock('../../src/scanner/target-guard.js', async (importOriginal) => {
  const guard = await importOriginal<typeof import('../../src/scanner/target-guard.js')>();
  return {
    ...guard,
    checkTarget: (url: URL | string, policy: TargetPolicy) => {
      counts.checks.push(String(url));
      return guard.checkTarget(url, policy);
    },
    // What the server's policy resolves with (see policyOf).
    defaultResolver: async (host: string) => {
      const answer = DNS[host];
      if (answer) return answer;
      throw new WcagaiError('DNS_FAILURE', `cannot resolve ${host}: ENOTFOUND`, { details: { host, code: 'ENOTFOUND' } });
    },
  };
});

let redis: RedisServer;
let svc: TestService;
let guard: typeof import('../../src/scanner/target-guard.js');

beforeAll(async () => {
  redis = await startRedisServer();
  svc = await startTestService({ redisUrl: redis.url, settings: { ALLOW_PRIVATE_TARGETS: 'false' } });
  guard = await vi.importActual<typeof import('../../src/scanner/target-guard.js')>('../../src/scanner/target-guard.js');
});

afterAll(async () => {
  await svc?.close();
  await redis?.close();
});

beforeEach(() => {
  counts.checks.length = 0;
});

/** What the target guard itself says of `url` (with the same DNS answers), or null when it passes. */
async function guardSays(url: string): Promise<{ code: string; message: string } | null> {
  const policy: TargetPolicy = { allowPrivate: false, allowedHosts: [], resolve: async (host) => DNS[host] ?? Promise.reject(new WcagaiError('DNS_FAILURE', `cannot resolve ${host}: ENOTFOUND`)) };
  try {
    await guard.checkTarget(guard.parseTargetUrl(url), policy);
    return null;
  } catch (err) {
    return { code: (err as WcagaiError).code, message: (err as WcagaiError).message };
  }
}

describe('POST /api/scans checks its URL once', () => {
  it('an address literal and a host name each pass the target policy in one check', async () => {
    for (const url of ['http://93.184.215.14/once.html', 'https://public.wcagai.test/once.html']) {
      counts.checks.length = 0;
      const res = await svc.post('/api/scans', { url });
      expect(res.status, res.body).toBe(202);
      expect(counts.checks, url).toHaveLength(1);
    }
    expect(await totalJobs(svc.service)).toBe(2);
  });

  it('a host name that resolves to a private address or not at all: the guard answer, in one check', async () => {
    const blocked = await svc.post('/api/scans', { url: 'https://private.wcagai.test/' });
    expect(blocked.status, blocked.body).toBe(400);
    expect(blocked.json).toMatchObject({ code: 'BLOCKED_TARGET', detail: (await guardSays('https://private.wcagai.test/'))!.message, errors: [{ field: 'url' }] });
    expect(blocked.json.detail).toMatch(/10\.0\.0\.7/);
    // An unresolvable host is a bad request: INVALID_URL with the resolver's message.
    const unknown = await svc.post('/api/scans', { url: 'https://nowhere.wcagai.test/' });
    expect(unknown.status, unknown.body).toBe(400);
    expect(unknown.json).toMatchObject({ code: 'INVALID_URL', detail: 'cannot resolve nowhere.wcagai.test: ENOTFOUND', errors: [{ field: 'url' }] });
    expect(counts.checks).toHaveLength(2);
  });
});

describe('POST /api/batches checks each URL once', () => {
  it('queues a batch of literals and host names with one check per URL', async () => {
    const before = await totalJobs(svc.service);
    const urls = ['http://93.184.215.14/b1.html', 'https://public.wcagai.test/b2.html', 'https://public2.wcagai.test/b3.html'];
    const res = await svc.post('/api/batches', { urls });
    expect(res.status, res.body).toBe(202);
    expect(counts.checks).toHaveLength(3);
    expect((await totalJobs(svc.service)) - before).toBe(3);
  });

  it('names each URL DNS refuses by its index, with the guard messages, in one check each', async () => {
    const urls = ['https://public.wcagai.test/c1.html', 'https://private.wcagai.test/c2.html', 'https://nowhere.wcagai.test/c3.html'];
    const res = await svc.post('/api/batches', { urls });
    expect(res.status, res.body).toBe(400);
    expect(res.json.code).toBe('VALIDATION_FAILED');
    expect(res.json.errors).toEqual([
      { field: 'urls[1]', message: (await guardSays(urls[1]!))!.message },
      { field: 'urls[2]', message: 'cannot resolve nowhere.wcagai.test: ENOTFOUND' },
    ]);
    expect(counts.checks).toHaveLength(3);
  });
});
