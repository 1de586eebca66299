import { describe, expect, it } from 'vitest';
import { CENSOR, redactSecrets } from '../../src/observability/redact.js';

describe('redactSecrets', () => {
  it('returns the same object, untouched, when it holds no credential', () => {
    const line = { event: 'scan.queued', jobId: 'scan_1', url: 'https://example.com/', nested: { attempts: 2, list: [1, { ok: true }] } };
    expect(redactSecrets(line)).toBe(line);
  });

  it('censors credentials at any depth and in any case, copying only what it changes', () => {
    const headers = { Authorization: 'Bearer s3cret', 'X-API-Key': 'k3y', accept: 'text/html' };
    const untouched = { a: 1 };
    const line = { req: { headers }, client: { nested: { deeper: { token: 't0ken', keep: 'x' } } }, list: [{ password: 'pw' }, 'plain'], untouched };
    const out = redactSecrets(line);
    expect(out).toEqual({
      req: { headers: { Authorization: CENSOR, 'X-API-Key': CENSOR, accept: 'text/html' } },
      client: { nested: { deeper: { token: CENSOR, keep: 'x' } } },
      list: [{ password: CENSOR }, 'plain'],
      untouched,
    });
    expect(out.untouched).toBe(untouched);
    // The caller's objects are never changed: the same object may be logged again, or used.
    expect(headers.Authorization).toBe('Bearer s3cret');
    expect(line.list[0]).toEqual({ password: 'pw' });
  });

  it('censors settings that hold credentials wherever a configuration is logged', () => {
    const out = redactSecrets({ config: { ADMIN_TOKEN: 'adm', API_KEYS: ['k1'], REDIS_URL: 'redis://:pw@h:6379', PORT: 8080 } });
    expect(out.config).toEqual({ ADMIN_TOKEN: CENSOR, API_KEYS: CENSOR, REDIS_URL: CENSOR, PORT: 8080 });
  });

  it('keeps an error an error (message and stack included) while censoring its fields', () => {
    const err = Object.assign(new TypeError('upstream refused'), { status: 401, request: { headers: { authorization: 'Bearer zzz' } } });
    const out = redactSecrets({ err }).err;
    expect(out).toBeInstanceOf(TypeError);
    expect(out.message).toBe('upstream refused');
    expect(out.stack).toBe(err.stack);
    expect(out.status).toBe(401);
    expect(out.request).toEqual({ headers: { authorization: CENSOR } });
    expect(err.request.headers.authorization).toBe('Bearer zzz');
  });

  it('leaves objects that are not plain (a request, a socket) to their serializers, and ends on cycles', () => {
    class Raw {
      authorization = 'Bearer raw';
    }
    const raw = new Raw();
    expect(redactSecrets({ raw }).raw).toBe(raw);
    const cyclic: Record<string, unknown> = { name: 'loop' };
    cyclic.self = cyclic;
    expect(() => redactSecrets(cyclic)).not.toThrow();
  });
});
