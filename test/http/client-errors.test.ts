import { connect } from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { startTestService, totalJobs, type TestService } from '../support/service.js';
import { DEFAULT_SCAN_OPTIONS } from '../../src/domain/scan.js';
import { validateScanOptions } from '../../src/scanner/options.js';

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

interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

function parse(text: string): RawAnswer {
  const [head = '', body = ''] = text.split('\r\n\r\n');
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const i = line.indexOf(':');
    headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return { status: Number(statusLine.split(' ')[1]), headers, body };
}

/** Writes each part on one connection, `gapMs` apart, and reads until the server closes it. */
function exchange(parts: Array<Buffer | string>, gapMs = 100): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
    socket.setTimeout(5_000, () => socket.destroy(new Error('no answer within 5 s')));
    void (async () => {
      for (const [i, part] of parts.entries()) {
        if (i > 0) await new Promise((r) => setTimeout(r, gapMs));
        if (!socket.destroyed) socket.write(part);
      }
    })();
  });
}

/** Writes `data` on a fresh connection and reads until the server closes it: status, headers (lower-case names) and body. */
const raw = async (data: Buffer | string): Promise<RawAnswer> => parse(await exchange([data]));

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

const PAGE = JSON.stringify({ url: 'http://127.0.0.1:9/page.html' });

describe('a compressed request body', () => {
  it('is a 415 with Accept-Encoding: identity, not "not valid JSON", and queues nothing', async () => {
    const res = await svc.request({ method: 'POST', url: '/api/scans', headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, payload: gzipSync(PAGE) });
    expect(res.status).toBe(415);
    expect(res.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expect(res.headers['accept-encoding']).toBe('identity');
    expect(res.json).toMatchObject({ code: 'UNSUPPORTED_MEDIA_TYPE', instance: '/api/scans' });
    expect(res.json.detail).toContain('gzip');
    const batch = await svc.request({ method: 'POST', url: '/api/batches', headers: { 'content-type': 'application/json', 'content-encoding': 'br' }, payload: JSON.stringify({ urls: ['http://127.0.0.1:9/a'] }) });
    expect(batch.status).toBe(415);
    expect(await totalJobs(svc.service)).toBe(0);
  });

  it('identity, or a coding named on a request without a body, changes nothing', async () => {
    const identity = await svc.request({ method: 'POST', url: '/api/scans', headers: { 'content-type': 'application/json', 'content-encoding': 'identity' }, payload: '{"url":"nope"}' });
    expect(identity.status).toBe(400);
    expect(identity.json.code).toBe('INVALID_URL');
    const get = await svc.get('/api/scans/scan_none', { 'content-encoding': 'gzip' });
    expect(get.status).toBe(404);
  });
});

describe('methods Fastify routes but a path does not serve', () => {
  it('TRACE and QUERY are 405 with Allow, as PUT is, not a 404 saying the path does not exist', async () => {
    for (const [method, url, allow] of [
      ['TRACE', '/api/scans', 'POST'],
      ['TRACE', '/api/scans/scan_x', 'GET, HEAD'],
      ['TRACE', '/api/scans/scan_x/report', 'GET, HEAD'],
      ['TRACE', '/api/batches/batch_x', 'GET, HEAD'],
      ['QUERY', '/api/batches', 'POST'],
    ] as const) {
      // QUERY is newer than inject's method type; the server routes it all the same.
      const res = await svc.request({ method: method as 'GET', url, headers: { 'content-type': 'application/json' }, payload: method === 'QUERY' ? '{}' : undefined });
      expect(res.status, `${method} ${url}`).toBe(405);
      expect(res.headers.allow, `${method} ${url}`).toBe(allow);
      expect(res.json.code, `${method} ${url}`).toBe('METHOD_NOT_ALLOWED');
    }
  });
});

describe('a body the HTTP parser refuses after the head was read', () => {
  it('is answered with the request id of that request (the one its log lines carry) and its path', async () => {
    const head = 'POST /api/scans?x=1 HTTP/1.1\r\nHost: x\r\nX-Request-ID: framing-42\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n';
    const res = parse(await exchange([head, 'zz\r\n{}\r\n0\r\n\r\n']));
    expect(res.status).toBe(400);
    expect(res.headers['x-request-id']).toBe('framing-42');
    const body = JSON.parse(res.body) as Record<string, unknown>;
    expect(body).toMatchObject({ code: 'BAD_REQUEST', requestId: 'framing-42', instance: '/api/scans' });
    expect(svc.logs.entries.some((e) => e.requestId === 'framing-42' && e.msg === 'incoming request')).toBe(true);
  });

  it('a refusal of the next request on a connection, whose head was never read, gets an id of its own', async () => {
    const first = 'GET /health/live HTTP/1.1\r\nHost: x\r\nX-Request-ID: framing-first\r\n\r\n';
    const text = await exchange([first, 'GARBAGE\r\n\r\n'], 300);
    const answers = text.split(/(?=HTTP\/1\.1 )/).map(parse);
    expect(answers.map((a) => a.status)).toEqual([200, 400]);
    expect(answers[0]!.headers['x-request-id']).toBe('framing-first');
    expect(answers[1]!.headers['x-request-id']).toMatch(/^req_/);
    expect(JSON.parse(answers[1]!.body)).toMatchObject({ instance: '/' });
  });
});

describe('POST /api/batches with limit', () => {
  it('refuses limit beside urls, naming it, rather than dropping URLs the client listed', async () => {
    const urls = ['http://127.0.0.1:9/a', 'http://127.0.0.1:9/b', 'http://127.0.0.1:9/c'];
    const res = await svc.post('/api/batches', { urls, limit: 1 });
    expect(res.status, res.body).toBe(400);
    expect(res.json.code).toBe('VALIDATION_FAILED');
    expect(res.json.errors).toEqual([{ field: 'limit', message: expect.stringContaining('sitemap') }]);
    expect(await totalJobs(svc.service)).toBe(0);
    // Named along with the other bad fields of the body.
    const both = await svc.post('/api/batches', { urls: ['nope'], limit: 2, priority: 'x' });
    expect((both.json.errors as Array<{ field: string }>).map((e) => e.field)).toEqual(['urls[0]', 'limit', 'priority']);
  });
});

describe('a request answered before its body was read', () => {
  it('gets one answer: a parser refusal of the rest of its body writes no second one', async () => {
    const head = 'POST /api/scans HTTP/1.1\r\nHost: x\r\nX-Request-ID: early-1\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n';
    const text = await exchange([head, 'zz\r\n{}\r\n0\r\n\r\n'], 200);
    expect(text.match(/^HTTP\/1\.1 /gm)).toHaveLength(1);
    expect(parse(text).status).toBe(415);
  });
});

describe('include and exclude selectors', () => {
  it('a selector that does not parse is a 400 naming its field, for a scan and a batch, and nothing is queued', async () => {
    const jobs = await totalJobs(svc.service);
    const scan = await svc.post('/api/scans', { url: 'http://127.0.0.1:9/page.html', include: ['##bad'] });
    expect(scan.status, scan.body).toBe(400);
    expect(scan.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expect(scan.json.code).toBe('INVALID_OPTIONS');
    expect(scan.json.errors).toEqual([{ field: 'include[0]', message: expect.stringContaining('##bad') }]);
    const batch = await svc.post('/api/batches', { urls: ['http://127.0.0.1:9/a'], exclude: ['main', 'div['] });
    expect(batch.status, batch.body).toBe(400);
    expect(batch.json.code).toBe('INVALID_OPTIONS');
    expect(batch.json.errors).toEqual([{ field: 'exclude[1]', message: expect.stringContaining('div[') }]);
    // Named along with the other bad fields of the body.
    const both = await svc.post('/api/scans', { url: 'nope', include: ['div >'], exclude: [':not('] });
    expect(both.json.code).toBe('VALIDATION_FAILED');
    expect((both.json.errors as Array<{ field: string }>).map((e) => e.field)).toEqual(['include[0]', 'exclude[0]', 'url']);
    expect(await totalJobs(svc.service)).toBe(jobs);
  });

  it('selectors axe takes (attribute selectors, :not(), lists, :has(), escapes) are accepted', async () => {
    const include = ['a[href^="http" i]', 'main:not(.skip)', 'main, nav', 'section:has(> img)', 'li:nth-child(2n+1)', '#\\31 23', 'div > p ~ ul'];
    const res = await svc.post('/api/scans', { url: 'http://127.0.0.1:9/selectors.html', include, exclude: ['[aria-hidden="true"]', '.ad *'] });
    expect(res.status, res.body).toBe(202);
  });
});

describe('validateScanOptions (what `wcagai scan --include/--exclude` and the worker check too)', () => {
  it('refuses a selector that does not parse, naming the option and index, and passes the forms axe takes', () => {
    const check = (include: string[], exclude: string[] = []) => () => validateScanOptions({ ...DEFAULT_SCAN_OPTIONS, include, exclude });
    expect(check(['##bad'])).toThrowError(/^include\/exclude selectors: include\[0\] "##bad" is not a valid CSS selector/);
    expect(check(['main'], ['nav', 'div['])).toThrowError(expect.objectContaining({ code: 'INVALID_OPTIONS', details: { field: 'exclude[1]', selector: 'div[' } }));
    for (const bad of ['div >', '> p', 'div,', ':not(', 'h1 {', ' ']) expect(check([bad]), bad).toThrowError(/not a valid CSS selector|an empty selector/);
    for (const good of ['main', '#nav, .menu', 'a[href$=".pdf" i]', ':not([hidden])', 'ul > li + li', 'section:has(> h2)', ':is(h1, h2):where(.x)', '.a\\:b', 'p::first-line']) expect(check([good], [good]), good).not.toThrow();
  });
});

describe('a JSON body refused for safety', () => {
  it('a __proto__ or constructor.prototype key is a 400 naming the key, not "not valid JSON"', async () => {
    for (const [payload, key] of [
      ['{"url":"http://127.0.0.1:9/p","__proto__":{"x":1}}', '__proto__'],
      ['{"url":"http://127.0.0.1:9/p","constructor":{"prototype":{"x":1}}}', 'constructor.prototype'],
    ] as const) {
      const res = await svc.request({ method: 'POST', url: '/api/scans', headers: { 'content-type': 'application/json' }, payload });
      expect(res.status, res.body).toBe(400);
      expect(res.headers['content-type']).toBe('application/problem+json; charset=utf-8');
      expect(res.json.detail).not.toMatch(/not valid JSON/i);
      expect(res.json.detail).toContain(key);
      expect(res.json.errors).toEqual([{ field: key, message: expect.any(String) }]);
    }
    // Deep in the body (however deep: a walk of 20,000 levels is no 500), named by its path.
    const nested = await svc.request({ method: 'POST', url: '/api/scans', headers: { 'content-type': 'application/json' }, payload: '{"url":"http://127.0.0.1:9/p","viewport":{"\\u005f_proto__":{}}}' });
    expect(nested.status, nested.body).toBe(400);
    expect(nested.json.errors).toEqual([{ field: 'viewport.__proto__', message: expect.any(String) }]);
    const depth = 20_000;
    const deep = await svc.request({ method: 'POST', url: '/api/scans', headers: { 'content-type': 'application/json' }, payload: `{"url":${'['.repeat(depth)}{"__proto__":1}${']'.repeat(depth)}}` });
    expect(deep.status, deep.body.slice(0, 300)).toBe(400);
    expect(deep.json.errors[0].field).toBe('…[0][0][0][0][0][0][0].__proto__');
  });
});

describe('a JSON body in a charset other than UTF-8', () => {
  it('is a 415 naming the charset; utf-8 in any case, or none, is read as before, and so is an ASCII body labelled with a single-byte charset', async () => {
    const cases: Array<[string, string]> = [
      ['utf-16', '{"url":"nope"}'],
      ['UTF-16LE', '{"url":"nope"}'],
      // Beyond ASCII, a single-byte charset's characters would read wrong.
      ['iso-8859-1', '{"url":"nope-\u00e9"}'],
    ];
    for (const [charset, payload] of cases) {
      const res = await svc.request({ method: 'POST', url: '/api/scans', headers: { 'content-type': `application/json; charset=${charset}` }, payload });
      expect(res.status, `${charset}: ${res.body}`).toBe(415);
      expect(res.json.code).toBe('UNSUPPORTED_MEDIA_TYPE');
      expect(res.json.detail).toContain(charset);
    }
    for (const type of ['application/json; charset=utf-8', 'application/json; charset="UTF-8"', 'application/json', 'application/json; charset=ISO-8859-1', 'application/json; charset=windows-1252']) {
      const res = await svc.request({ method: 'POST', url: '/api/scans', headers: { 'content-type': type }, payload: '{"url":"nope"}' });
      expect(res.status, type).toBe(400);
      expect(res.json.code, type).toBe('INVALID_URL');
    }
  });
});

describe('a body over BODY_LIMIT', () => {
  it('is a 413 whose detail gives the limit', async () => {
    const res = await svc.post('/api/scans', { url: 'http://127.0.0.1:9/p', pad: 'x'.repeat(70_000) });
    expect(res.status).toBe(413);
    expect(res.json.code).toBe('PAYLOAD_TOO_LARGE');
    expect(res.json.detail).toContain('65536 bytes (64 KiB)');
  });
});

describe('an unknown path', () => {
  it('is a 404 with a compressed body or a non-UTF-8 charset too, not a 415', async () => {
    const gzip = await svc.request({ method: 'POST', url: '/api/nothing-here', headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, payload: gzipSync(PAGE) });
    expect(gzip.status, gzip.body).toBe(404);
    expect(gzip.json.code).toBe('NOT_FOUND');
    const utf16 = await svc.request({ method: 'POST', url: '/api/nothing-here', headers: { 'content-type': 'application/json; charset=utf-16' }, payload: PAGE });
    expect(utf16.status, utf16.body).toBe(404);
    const notJson = await svc.request({ method: 'POST', url: '/api/nothing-here', headers: { 'content-type': 'application/json' }, payload: '{' });
    expect(notJson.status, notJson.body).toBe(404);
  });
});
