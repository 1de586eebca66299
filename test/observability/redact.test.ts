import { describe, expect, it } from 'vitest';
import { EventEmitter } from 'node:events';
import { CENSOR, redactSecrets, textForLog, urlForLog } from '../../src/observability/redact.js';

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

  it('walks the fields of class instances at any depth, censors emitters only by field name, and leaves bytes alone', () => {
    class Options {
      token = 't0ken';
      nested = { password: 'deeper, walked too' };
      headers = { authorization: 'Bearer nested-in-class' };
      name = 'kept';
    }
    const options = new Options();
    const out = redactSecrets({ wrapper: { options } }).wrapper.options;
    expect(out).toBeInstanceOf(Options);
    expect(out.token).toBe(CENSOR);
    expect(out.name).toBe('kept');
    expect(out.nested).toEqual({ password: CENSOR });
    expect(out.headers).toEqual({ authorization: CENSOR });
    expect(options.token).toBe('t0ken');
    expect(options.nested.password).toBe('deeper, walked too');
    // A socket, a stream, a logger: their own names are checked, nothing below them is walked.
    const emitter = Object.assign(new EventEmitter(), { token: 'emitter-token', inner: { password: 'not walked' } });
    const shallow = redactSecrets({ emitter }).emitter;
    expect(shallow.token).toBe(CENSOR);
    expect(shallow.inner).toBe(emitter.inner);
    const bytes = Buffer.from('authorization');
    expect(redactSecrets({ bytes }).bytes).toBe(bytes);
  });

  it('censors the usual spellings of credential names, and not counts or ids named after one', () => {
    const named = {
      accessToken: 'v1', access_token: 'v2', refresh_token: 'v3', client_secret: 'v4', 'api-key': 'v5', passwd: 'v6', privateKey: 'v7',
      dsn: 'v8', webhook_url: 'v9', 'x-auth-token': 'v10', 'X-API-KEY': 'v11', id_token: 'v12', private_key: 'v13', sessionId: 'v14', credentials: 'v15',
    };
    const out = redactSecrets({ named }).named as Record<string, unknown>;
    for (const key of Object.keys(named)) expect(out[key], key).toBe(CENSOR);
    const ordinary = { tokens: 812, maxTokens: 1024, max_tokens: 512, keyCount: 3, numberOfKeys: 4, cacheKey: 'abc', dedup_key: 'd', storageKeys: ['k'], key: 'ip:1.2.3.4', signal: 'SIGTERM', authority: 'h' };
    const line = { usage: ordinary };
    expect(redactSecrets(line)).toBe(line);
  });

  it('walks an error\'s cause and an AggregateError\'s errors, and masks URLs its message quotes', () => {
    const inner = Object.assign(new Error('inner'), { config: { headers: { authorization: 'Bearer cause-error' } } });
    const outer = new Error('outer', { cause: inner });
    const plainCause = new Error('outer', { cause: { headers: { cookie: 'cause-plain' } } });
    const agg = new AggregateError([Object.assign(new Error('a'), { headers: { 'x-api-key': 'agg-key' } })], 'all failed');
    const quoting = new Error('net::ERR_CONNECTION_REFUSED at https://site.example/p?token=in-message&page=2');
    const out = redactSecrets({ outer, plainCause, agg, quoting });
    const text = JSON.stringify([out.outer.cause, out.plainCause.cause, out.agg.errors, out.quoting.message, out.quoting.stack]);
    for (const secret of ['cause-error', 'cause-plain', 'agg-key', 'in-message']) expect(text).not.toContain(secret);
    expect(out.outer.cause).toBeInstanceOf(Error);
    expect(out.agg).toBeInstanceOf(AggregateError);
    expect(out.agg.errors[0].headers).toEqual({ 'x-api-key': CENSOR });
    expect(out.quoting.message).toBe('net::ERR_CONNECTION_REFUSED at https://site.example/p?token=[redacted]&page=2');
    // Still non-enumerable, as on the original, and the originals are untouched.
    expect(Object.keys(out.outer)).not.toContain('cause');
    expect(inner.config.headers.authorization).toBe('Bearer cause-error');
    expect(quoting.message).toContain('in-message');
  });

  it('writes URL objects with their user, password and token-like query values masked', () => {
    const clean = new URL('https://example.com/a?page=2');
    const out = redactSecrets({ target: new URL('https://alice:hunter2@example.com/a?token=t0k&page=2'), clean });
    expect(out.target).toBe('https://[redacted]@example.com/a?token=[redacted]&page=2');
    expect(out.clean).toBe(clean);
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

describe('urlForLog', () => {
  it('masks the user and password, and the values of credential-like query and fragment parameters', () => {
    expect(urlForLog('http://alice:hunter2@127.0.0.1:6492/page')).toBe('http://[redacted]@127.0.0.1:6492/page');
    expect(urlForLog('http://example.com@127.0.0.1/')).toBe('http://[redacted]@127.0.0.1/');
    expect(urlForLog('http:\\\\bob:pw@host/')).toBe('http:\\\\[redacted]@host/');
    expect(urlForLog('https://h/x?token=a&page=2&access_token=b&api-key=c&sig=d&X-Amz-Signature=e')).toBe(
      'https://h/x?token=[redacted]&page=2&access_token=[redacted]&api-key=[redacted]&sig=[redacted]&X-Amz-Signature=[redacted]',
    );
    expect(urlForLog('https://h/cb#access_token=a&state=s')).toBe('https://h/cb#access_token=[redacted]&state=s');
    expect(urlForLog('/api/scan?to%6Ben=a')).toBe('/api/scan?to%6Ben=[redacted]');
    expect(urlForLog('https://h/r?next=http://u:p@inner/')).toBe('https://h/r?next=http://[redacted]@inner/');
    for (const plain of ['https://example.com/a?page=2#top', '/health/live', 'not a url']) expect(urlForLog(plain)).toBe(plain);
  });

  it('masks every URL a text quotes', () => {
    expect(textForLog('net::ERR_CONNECTION_REFUSED at http://127.0.0.1:6499/?token=T0K')).toBe('net::ERR_CONNECTION_REFUSED at http://127.0.0.1:6499/?token=[redacted]');
    expect(textForLog('from https://a/?key=1 to https://b:pw@c/')).toBe('from https://a/?key=[redacted] to https://[redacted]@c/');
    expect(textForLog('no url here')).toBe('no url here');
  });
});
