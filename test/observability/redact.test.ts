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

  it('censors the fields of other objects by name without walking into them, and leaves bytes alone', () => {
    class Options {
      token = 't0ken';
      nested = { password: 'deeper, not walked' };
      name = 'kept';
    }
    const options = new Options();
    const out = redactSecrets({ options }).options;
    expect(out).toBeInstanceOf(Options);
    expect(out.token).toBe(CENSOR);
    expect(out.name).toBe('kept');
    expect(out.nested).toBe(options.nested);
    expect(options.token).toBe('t0ken');
    const bytes = Buffer.from('authorization');
    expect(redactSecrets({ bytes }).bytes).toBe(bytes);
  });

  it('cuts a cycle where it closes and replaces what lies deeper than eight levels, so neither writes a secret', () => {
    const cyclic: Record<string, unknown> = { name: 'loop', token: 'in-the-loop' };
    cyclic.self = cyclic;
    const out = redactSecrets({ cyclic }).cyclic as Record<string, unknown>;
    expect(out).toEqual({ name: 'loop', token: CENSOR, self: '[Circular]' });
    let deep: Record<string, unknown> = { password: 'at the bottom' };
    for (let i = 0; i < 10; i++) deep = { next: deep };
    expect(JSON.stringify(redactSecrets(deep))).not.toContain('at the bottom');
    expect(JSON.stringify(redactSecrets(deep))).toContain('[too deep]');
  });
});
