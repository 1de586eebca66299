/**
 * Hostile input, part 1: property-based fuzzing (fast-check) of every public route of a real
 * `wcagai serve --no-worker` process over real HTTP, with real Redis and the production target
 * policy. Random and malformed methods, paths, ids, query strings, headers, credentials, content
 * types, bodies and sizes, plus raw malformed HTTP on fresh sockets. Asserted: no 5xx, every 4xx a
 * valid problem+json, no error logged by the server, and the server healthy afterwards.
 *
 * Reproduce a run with FUZZ_SEED=<seed printed in the output>.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { recordResult } from './results.js';
import { httpClient, parseRawResponse, percentile, rawExchange, type RawAnswer, type SendOptions } from './support/hostile-http.js';
import { problemIssues } from './support/hostile-problem.js';
import { startServe, type ServeProcess } from './support/hostile-serve.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20_240_917);
const BATCH = 32;
const HTTP_RUNS = Number(process.env.FUZZ_RUNS ?? 320); // × 32 requests each
const RAW_RUNS = Number(process.env.FUZZ_RAW_RUNS ?? 400);
const ADMIN_TOKEN = 'fuzz-admin-token-8c1d5e93a7';
const API_KEY = 'fuzz-api-key-51be0c';
const REPRODUCE = `FUZZ_SEED=${SEED} npx vitest run --config vitest.reliability.config.ts test/reliability/fuzz.test.ts`;

let redis: RedisServer;
let serve: ServeProcess;
let sitemaps: Server;
let sitemapOrigin: string;
/** Scan and batch ids the server handed out, so reads also hit ids that exist. */
const knownIds: string[] = [];

// ---------------------------------------------------------------------------------------------
// A hostile sitemap host on loopback (allowed by SCAN_ALLOWED_HOSTS): what it answers is chosen by
// the path the fuzzer asks for, so the server's sitemap fetcher and parser are fuzzed too.

const SITEMAP_BODIES: Record<string, () => { status?: number; type?: string; body: string; location?: string }> = {
  ok: () => ({ type: 'application/xml', body: '<?xml version="1.0"?><urlset><url><loc>http://93.184.215.14/a</loc></url><url><loc>http://93.184.215.14/b</loc></url></urlset>' }),
  private: () => ({ type: 'application/xml', body: '<urlset><url><loc>http://169.254.169.254/latest/meta-data/</loc></url></urlset>' }),
  garbage: () => ({ type: 'application/xml', body: '<urlset><url><loc>\u0000\uFFFF</loc><<<</urlset' }),
  empty: () => ({ type: 'application/xml', body: '' }),
  html: () => ({ type: 'text/html', body: '<html><body>not a sitemap</body></html>' }),
  huge: () => ({ type: 'application/xml', body: `<urlset>${'<url><loc>http://93.184.215.14/x</loc></url>'.repeat(20_000)}</urlset>` }),
  nested: () => ({ type: 'application/xml', body: `<sitemapindex><sitemap><loc>${sitemapOrigin}/nested</loc></sitemap></sitemapindex>` }),
  entities: () => ({ type: 'application/xml', body: '<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><urlset><url><loc>&b;</loc></url></urlset>' }),
  redirect: () => ({ status: 302, body: '', location: 'http://127.0.0.1:9/internal.xml' }),
  error: () => ({ status: 500, body: 'boom' }),
  notfound: () => ({ status: 404, body: 'nope' }),
};

// ---------------------------------------------------------------------------------------------
// Arbitraries

const printable = fc.string({ unit: 'binary-ascii', maxLength: 40 }).map((s) => s.replace(/[^\x20-\x7e]/g, ''));
const anyText = fc.string({ unit: 'binary', maxLength: 60 });
const enc = (s: string) => encodeURIComponent(s);

const idArb = fc.oneof(
  fc.constantFrom('scan_x', `scan_${'a'.repeat(64)}`, `scan_${'a'.repeat(65)}`, 'batch_x', '..%2F..%2Fetc%2Fpasswd', '%00', '%FF', '%', '%zz', '%E2%82', 'scan_%F0%9F%92%A9', '__proto__', 'constructor', '*', '.', '..', 'a'.repeat(250), 'ai', 'slack', 'AI', 'queue_depth', 'RSS', '0', '-1', '1e309'),
  fc.stringMatching(/^(scan|batch|dlq)_[A-Za-z0-9_-]{1,70}$/),
  anyText.map(enc),
  fc.nat().map((i) => knownIds[i % Math.max(1, knownIds.length)] ?? 'scan_none'),
);

const publicUrl = fc.stringMatching(/^[a-z0-9/._~-]{0,30}$/).map((p) => `http://93.184.215.14/${p}`);
const urlArb = fc.oneof(
  { arbitrary: publicUrl, weight: 3 },
  { arbitrary: fc.webUrl({ withQueryParameters: true, withFragments: true }), weight: 1 },
  {
    arbitrary: fc.constantFrom(
      'http://127.0.0.1/', 'http://2130706433/', 'http://0x7f.1/', 'http://[::1]/', 'http://169.254.169.254/latest/meta-data/', 'http://localhost/', 'http://metadata.google.internal/',
      'file:///etc/passwd', 'javascript:alert(1)', 'data:text/html,x', 'chrome://settings', 'http://example.com@127.0.0.1/', 'http://', '//x', 'http://[::ffff:127.0.0.1]/',
      'http://93.184.215.14:99999/', 'http://93.184.215.14:0/', 'HTTP://93.184.215.14/', ' http://93.184.215.14/ ', 'http://%31%32%37.0.0.1/', 'http://xn--/', 'http://a..b/', `http://93.184.215.14/${'x'.repeat(2_100)}`,
    ),
    weight: 2,
  },
  { arbitrary: anyText, weight: 1 },
  { arbitrary: fc.anything({ maxDepth: 2 }), weight: 1 },
);

/** A value of the right type most of the time, anything else sometimes. */
const maybe = <T>(good: fc.Arbitrary<T>) => fc.oneof({ arbitrary: good, weight: 4 }, { arbitrary: fc.jsonValue({ maxDepth: 2 }), weight: 1 });
const ruleIds = fc.array(fc.oneof(fc.constantFrom('image-alt', 'label', 'color-contrast', 'no-such-rule'), printable), { maxLength: 4 });
const optionsArb = fc.record(
  {
    wcagLevel: maybe(fc.constantFrom('A', 'AA', 'AAA', 'aa', 'AAAA')),
    wcagVersion: maybe(fc.constantFrom('2.0', '2.1', '2.2', '3.0', 2.1)),
    bestPractice: maybe(fc.boolean()),
    rules: maybe(ruleIds),
    disableRules: maybe(ruleIds),
    include: maybe(fc.array(printable, { maxLength: 3 })),
    exclude: maybe(fc.array(printable, { maxLength: 3 })),
    viewport: maybe(fc.record({ width: fc.integer({ min: -10, max: 9_000 }), height: fc.integer({ min: -10, max: 9_000 }) }, { requiredKeys: [] })),
    priority: maybe(fc.constantFrom('high', 'normal', 'low', 'urgent')),
  },
  { requiredKeys: [] },
);
const scanBody = fc.tuple(urlArb, optionsArb, fc.option(fc.dictionary(printable, fc.jsonValue({ maxDepth: 1 }), { maxKeys: 2 }), { nil: undefined })).map(([url, options, extra]) => ({ url, ...options, ...extra }));
const sitemapUrl = fc.constantFrom(...Object.keys(SITEMAP_BODIES)).map((name) => `${sitemapOrigin}/${name}`);
const batchBody = fc.oneof(
  fc.record({ urls: fc.array(urlArb, { maxLength: 5 }) }, { requiredKeys: [] }),
  fc.record({ sitemap: fc.oneof(sitemapUrl, urlArb), limit: maybe(fc.integer({ min: -1, max: 20_000 })) }, { requiredKeys: [] }),
  fc.record({ urls: fc.array(publicUrl, { maxLength: 3 }), sitemap: sitemapUrl }),
).chain((b) => optionsArb.map((o) => ({ ...b, ...o })));
const silenceBody = fc.record({ for: maybe(fc.constantFrom('1h', '1m', '59s', '30d', '31d', '2h30m', 'abc', '', '1e9')), reason: maybe(fc.oneof(printable, fc.constant('r'.repeat(300)))) }, { requiredKeys: [] });
const dlqBulkBody = fc.record({ code: maybe(fc.constantFrom('HTTP_SERVER_ERROR', 'lower', 'X'.repeat(70))), host: maybe(printable), all: maybe(fc.constantFrom(true, false, 'true')) }, { requiredKeys: [] });

type Body = string | Buffer | undefined;
const json = (a: fc.Arbitrary<unknown>): fc.Arbitrary<Body> => a.map((v) => JSON.stringify(v) ?? 'null');
const bodyArb = (structured: fc.Arbitrary<unknown>): fc.Arbitrary<Body> =>
  fc.oneof(
    { arbitrary: json(structured), weight: 8 },
    { arbitrary: json(fc.jsonValue({ maxDepth: 3 })), weight: 2 },
    { arbitrary: fc.constant(undefined), weight: 1 },
    { arbitrary: fc.constant(''), weight: 1 },
    { arbitrary: anyText, weight: 1 },
    { arbitrary: fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)), weight: 1 },
    { arbitrary: json(structured).map((s) => (s ?? '').slice(0, Math.max(1, Math.floor((s ?? '').length / 2)))), weight: 1 },
    { arbitrary: fc.integer({ min: 60_000, max: 80_000 }).map((n) => JSON.stringify({ url: `http://93.184.215.14/${'a'.repeat(n)}` })), weight: 1 },
    { arbitrary: fc.integer({ min: 10, max: 5_000 }).map((d) => `${'['.repeat(d)}${']'.repeat(d)}`), weight: 1 },
    { arbitrary: fc.integer({ min: 10, max: 3_000 }).map((d) => `${'{"a":'.repeat(d)}1${'}'.repeat(d)}`), weight: 1 },
    {
      arbitrary: fc.constantFrom(
        '{"__proto__":{"polluted":1},"url":"http://93.184.215.14/"}',
        '{"constructor":{"prototype":{"polluted":1}},"url":"http://93.184.215.14/"}',
        '{"url":"http://93.184.215.14/","url":"http://127.0.0.1/"}',
        '{"url":"http://93.184.215.14/\\u0000"}',
        '{"url":"\\ud800"}',
        'null', 'true', '[]', '1e999', '"http://93.184.215.14/"', '\uFEFF{"url":"http://93.184.215.14/"}',
      ),
      weight: 1,
    },
  );

const CONTENT_TYPES = [
  'application/json', 'application/json; charset=utf-8', 'application/json; charset=latin1', 'application/json;charset=UTF-16', 'APPLICATION/JSON',
  'application/problem+json', 'application/vnd.api+json', 'text/json', 'text/plain', 'text/html', 'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=----x', 'application/octet-stream', 'application/xml', 'application/json, text/html', '*/*', '', ';', 'application/',
];
const contentType = fc.oneof({ arbitrary: fc.constant('application/json'), weight: 6 }, { arbitrary: fc.constantFrom(...CONTENT_TYPES), weight: 3 }, { arbitrary: printable, weight: 1 }, { arbitrary: fc.constant(undefined), weight: 1 });

const tokenName = fc.stringMatching(/^[a-zA-Z0-9!#$%&'*+.^_`|~-]{1,20}$/);
const latin1Value = fc.string({ unit: 'binary', maxLength: 50 }).map((s) => s.replace(/[^\t\x20-\x7e\x80-\xff]/g, ''));
const credentials = fc.oneof(
  { arbitrary: fc.constant({ authorization: `Bearer ${ADMIN_TOKEN}`, 'x-api-key': API_KEY }), weight: 6 },
  { arbitrary: fc.constant({ authorization: `Bearer ${API_KEY}` }), weight: 2 },
  { arbitrary: fc.constant({}), weight: 1 },
  { arbitrary: latin1Value.map((v) => ({ authorization: v })), weight: 1 },
  { arbitrary: fc.constantFrom(`bearer ${ADMIN_TOKEN}`, `Bearer  ${ADMIN_TOKEN} `, `Bearer ${ADMIN_TOKEN}\t`, `Bearer ${ADMIN_TOKEN.toUpperCase()}`, `Basic ${ADMIN_TOKEN}`, 'Bearer').map((v) => ({ authorization: v, 'x-api-key': API_KEY })), weight: 1 },
);
const specialHeaders = fc.record(
  {
    'x-request-id': fc.oneof(latin1Value, fc.stringMatching(/^[A-Za-z0-9._:-]{1,140}$/)),
    traceparent: fc.oneof(latin1Value, fc.stringMatching(/^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/)),
    prefer: fc.oneof(latin1Value, fc.constantFrom('wait=0', 'wait="0"', 'wait=-1', 'wait=1e9', 'wait=', 'return=minimal, wait=0', 'respond-async')),
    accept: fc.oneof(latin1Value, fc.constantFrom('application/json', 'text/html', '*/*', 'application/problem+json')),
    'accept-encoding': fc.constantFrom('gzip', 'br', 'deflate, gzip;q=0', 'identity;q=0'),
    'x-forwarded-for': latin1Value,
    cookie: latin1Value,
  },
  { requiredKeys: [] },
);
const extraHeaders = fc.dictionary(tokenName.filter((n) => !/^(content-length|transfer-encoding|host|connection|expect|upgrade|te|trailer|keep-alive|proxy-connection)$/i.test(n)), latin1Value, { maxKeys: 4 });
const bigHeader = fc.integer({ min: 8_000, max: 20_000 }).map((n) => ({ 'x-padding': 'p'.repeat(n) }));

const queryValue = fc.oneof(fc.constantFrom('', '0', '1', '50', '1000', '1001', '-1', '1.5', 'NaN', '1e3', '30d', '12h', 'abc', 'true', 'json', 'html', 'sarif', 'junit', 'csv', 'pretty', 'xml', 'HTML', 'HTTP_SERVER_ERROR'), printable, anyText);
const queryKey = fc.oneof(fc.constantFrom('limit', 'cursor', 'code', 'host', 'format', 'olderThan', '__proto__', 'constructor', 'a[b]', 'limit[]', 'toString'), tokenName);
const queryArb = fc.oneof(
  { arbitrary: fc.constant(''), weight: 2 },
  { arbitrary: fc.array(fc.tuple(queryKey, queryValue), { maxLength: 5 }).map((pairs) => (pairs.length ? `?${pairs.map(([k, v]) => `${enc(k)}=${enc(v)}`).join('&')}` : '')), weight: 4 },
  { arbitrary: fc.constantFrom('?', '?&&', '?=', '?limit', '?%', '?limit=%zz', `?format=${'x'.repeat(3_000)}`, '?limit=1&limit=2', '?cursor=' + enc('\u0000')), weight: 1 },
);

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'] as const;

interface RouteSpec {
  method: string;
  path: (id: string) => string;
  body?: fc.Arbitrary<unknown>;
  stream?: boolean;
}

/** Every public route (src/http/routes/*.ts, the metrics plugin), with the body it expects. */
const ROUTES: RouteSpec[] = [
  { method: 'POST', path: () => '/api/scans', body: scanBody },
  { method: 'POST', path: () => '/api/scan', body: scanBody },
  { method: 'GET', path: (id) => `/api/scans/${id}` },
  { method: 'GET', path: (id) => `/api/scans/${id}/report` },
  { method: 'POST', path: () => '/api/batches', body: batchBody },
  { method: 'GET', path: (id) => `/api/batches/${id}` },
  { method: 'GET', path: () => '/api/queue' },
  { method: 'GET', path: () => '/api/workers' },
  { method: 'GET', path: () => '/health' },
  { method: 'GET', path: () => '/health/live' },
  { method: 'GET', path: () => '/health/ready' },
  { method: 'GET', path: () => '/health/detailed' },
  { method: 'GET', path: () => '/metrics' },
  { method: 'POST', path: () => '/admin/queue/pause' },
  { method: 'POST', path: () => '/admin/queue/resume' },
  { method: 'GET', path: () => '/admin/dlq/jobs' },
  { method: 'GET', path: (id) => `/admin/dlq/jobs/${id}` },
  { method: 'DELETE', path: (id) => `/admin/dlq/jobs/${id}` },
  { method: 'GET', path: () => '/admin/dlq/stats' },
  { method: 'POST', path: (id) => `/admin/dlq/retry/${id}` },
  { method: 'POST', path: () => '/admin/dlq/retry', body: dlqBulkBody },
  { method: 'POST', path: () => '/admin/dlq/purge' },
  { method: 'GET', path: () => '/admin/breakers' },
  { method: 'POST', path: (id) => `/admin/breakers/${id}/reset` },
  { method: 'POST', path: (id) => `/admin/breakers/${id}/isolate` },
  { method: 'GET', path: () => '/admin/queue' },
  { method: 'GET', path: () => '/admin/alerts' },
  { method: 'POST', path: (id) => `/admin/alerts/${id}/silence`, body: silenceBody },
  { method: 'DELETE', path: (id) => `/admin/alerts/${id}/silence` },
  { method: 'GET', path: () => '/admin/snapshot' },
  { method: 'GET', path: () => '/admin/events', stream: true },
];

const pathNoise = fc.constantFrom('', '', '', '', '/', '//', '/..', '/%2e%2e', '/.', ';x', '%20', '/x/y/z');
const prefixNoise = fc.constantFrom('', '', '', '', '', '/', '/API', '/admin/..', '/%61dmin', '/./');

interface FuzzRequest extends SendOptions {
  route: string;
  stream: boolean;
}

const requestArb: fc.Arbitrary<FuzzRequest> = fc
  .record({
    route: fc.nat({ max: ROUTES.length - 1 }),
    methodSwap: fc.oneof({ arbitrary: fc.constant(undefined), weight: 5 }, { arbitrary: fc.constantFrom(...METHODS, 'PROPFIND', 'TRACE'), weight: 1 }),
    id: idArb,
    prefix: prefixNoise,
    suffix: pathNoise,
    query: queryArb,
    credentials,
    special: specialHeaders,
    extra: extraHeaders,
    big: fc.oneof({ arbitrary: fc.constant(undefined), weight: 40 }, { arbitrary: bigHeader, weight: 1 }),
    contentType,
    body: fc.nat(),
  })
  .chain((r) => {
    const spec = ROUTES[r.route]!;
    return bodyArb(spec.body ?? fc.jsonValue({ maxDepth: 2 })).map((body): FuzzRequest => {
      const method = r.methodSwap ?? spec.method;
      const headers: Record<string, string> = { ...r.extra, ...r.special, ...r.credentials, ...(r.big ?? {}) };
      const hasBody = method !== 'GET' && method !== 'HEAD' && body !== undefined;
      if (hasBody && r.contentType !== undefined) headers['content-type'] = r.contentType;
      const path = `${r.prefix}${spec.path(r.id)}${r.suffix}${r.query}`.replace(/^(?!\/)/, '/');
      return { route: `${spec.method} ${spec.path(':id')}`, method, path, headers, ...(hasBody ? { body } : {}), stream: spec.stream === true, headOnly: spec.stream === true, timeoutMs: 20_000 };
    });
  });

// ---------------------------------------------------------------------------------------------
// Raw HTTP: malformed framing on fresh connections.

const rawArb = fc.oneof(
  fc.constantFrom(
    'GET / HTTP/1.1\r\n\r\n',
    'GET /health HTTP/1.0\r\n\r\n',
    'GET /api/queue HTTP/9.9\r\nHost: x\r\n\r\n',
    'FOO /api/scans HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET /api/scans/\u0000 HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET /api/scans/a b HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET http://evil.example/api/queue HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET * HTTP/1.1\r\nHost: x\r\n\r\n',
    'OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET /health HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n',
    'GET /health HTTP/1.1\r\nHost: x\r\nX: a\u0001b\r\n\r\n',
    'GET /health HTTP/1.1\nHost: x\n\n',
    'GET /health HTTP/1.1\r\nHost: x\r\n folded: continuation\r\n\r\n',
    'POST /api/scans HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\n{"a":1}',
    'POST /api/scans HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 7\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    'POST /api/scans HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n',
    'POST /api/scans HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n',
    'POST /api/scans HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: -1\r\n\r\n',
    'POST /api/scans HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 99999999999999999999\r\n\r\n',
    'POST /api/scans HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{}',
    'POST /api/scans HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}GET /health HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /api/queue HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n',
    'POST /api/scans HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}',
    'GET /health HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
    'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n',
    '\u0016\u0003\u0001\u0000\u00a5\u0001\u0000\u0000\u00a1\u0003\u0003',
    '\r\n\r\n\r\n',
  ),
  fc
    .record({
      method: fc.oneof(fc.constantFrom('GET', 'POST', 'DELETE'), tokenName),
      path: fc.oneof(fc.constantFrom('/api/scans', '/admin/dlq/jobs', '/health'), fc.string({ unit: 'binary-ascii', maxLength: 30 })),
      version: fc.constantFrom('HTTP/1.1', 'HTTP/1.0', 'HTTP/1.2', 'HTTP/2', 'http/1.1', ''),
      headers: fc.array(fc.tuple(fc.string({ unit: 'binary-ascii', maxLength: 12 }), fc.string({ unit: 'binary-ascii', maxLength: 20 })), { maxLength: 4 }),
      body: fc.string({ unit: 'binary-ascii', maxLength: 40 }),
    })
    .map((r) => `${r.method} ${r.path} ${r.version}\r\nHost: x\r\n${r.headers.map(([k, v]) => `${k}: ${v}\r\n`).join('')}Content-Length: ${r.body.length}\r\n\r\n${r.body}`),
  fc.uint8Array({ minLength: 1, maxLength: 120 }).map((b) => Buffer.from(b).toString('latin1')),
);

// ---------------------------------------------------------------------------------------------

beforeAll(async () => {
  redis = await startRedisServer();
  sitemaps = createServer((req, res) => {
    const name = new URL(req.url ?? '/', 'http://x').pathname.slice(1);
    const answer = (SITEMAP_BODIES[name] ?? SITEMAP_BODIES.notfound!)();
    res.writeHead(answer.status ?? 200, { 'content-type': answer.type ?? 'text/plain', ...(answer.location ? { location: answer.location } : {}) });
    res.end(answer.body);
  });
  await new Promise<void>((ok) => sitemaps.listen(0, '127.0.0.1', () => ok()));
  const sitemapPort = (sitemaps.address() as AddressInfo).port;
  sitemapOrigin = `http://127.0.0.1:${sitemapPort}`;
  serve = await startServe({
    redisUrl: redis.url,
    env: {
      // The production target policy; the hostile sitemap host alone is allowed.
      ALLOW_PRIVATE_TARGETS: 'false',
      SCAN_ALLOWED_HOSTS: `127.0.0.1:${sitemapPort}`,
      ADMIN_TOKEN,
      API_KEYS: API_KEY,
      // Nothing consumes the queue here: admission control must not turn accepted fuzz into 503s.
      MAX_QUEUE_DEPTH: '10000000',
      MAX_BATCH_URLS: '50',
      ALERTS_ENABLED: 'false',
      // Input handling is under test here, not overload: on a starved shared machine under-pressure
      // sees no event-loop samples (reported as an infinite delay) and answers 503 OVERLOADED.
      MAX_EVENT_LOOP_DELAY: '0',
    },
  });
  console.log(`[fuzz] seed ${SEED}; reproduce with: ${REPRODUCE}`);
}, 90_000);

afterAll(async () => {
  await serve?.stop();
  await new Promise((r) => (sitemaps ? sitemaps.close(r) : r(null)));
  await redis?.close();
});

describe('fuzzing every public route over real HTTP', () => {
  it('answers at least 10,000 random and malformed requests without a 5xx, every error a valid problem+json, and stays healthy', async () => {
    const started = performance.now();
    const client = httpClient(serve.base, BATCH);
    const statuses = new Map<number, number>();
    const routes = new Set<string>();
    const violations: string[] = [];
    let sent = 0;
    let fivexx = 0;
    let invalidProblems = 0;
    let noAnswer = 0;
    let headOverflow = 0;
    let unhealthyReports = 0;
    const latencies: number[] = [];

    const judge = (req: FuzzRequest, res: RawAnswer): string | null => {
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      latencies.push(res.ms);
      if (res.status === 0) {
        // A HEAD whose header block overflows across TCP reads gets its 431 with a body (the server
        // cannot tell the method once the parser has failed): the client rejects the extra bytes.
        if (req.method === 'HEAD' && /Data after/.test(res.body) && JSON.stringify(req.headers).length > 16_000) {
          headOverflow++;
          return null;
        }
        noAnswer++;
        return `no answer: ${res.body}`;
      }
      if (res.status === 503 && req.path.includes('/health') && res.body.includes('"status":"unhealthy"')) {
        // /health/detailed answers 503 when a check misses its 1 s deadline: on a starved shared
        // machine Redis's PING can. That is the health report doing its job, not input mishandled.
        unhealthyReports++;
        return null;
      }
      if (res.status >= 500) {
        fivexx++;
        return `${res.status}: ${res.body.slice(0, 300)}`;
      }
      if (res.status === 202) {
        const id = /"id":"((?:scan|batch)_[\w-]+)"/.exec(res.body)?.[1];
        if (id && knownIds.length < 500) knownIds.push(id);
      }
      if (res.status >= 400) {
        const issues = problemIssues(res.status, res.headers, res.body, req.method);
        if (issues.length) {
          invalidProblems++;
          return `${res.status} not a valid problem: ${issues.join('; ')} — ${res.body.slice(0, 200)}`;
        }
      }
      return null;
    };

    const describeReq = (r: FuzzRequest) => {
      const headers = Object.fromEntries(Object.entries(r.headers ?? {}).map(([k, v]) => [k, String(v).length > 80 ? `${String(v).slice(0, 80)}…(${String(v).length})` : v]));
      const body = r.body === undefined ? '' : ` body(${r.body.length})=${JSON.stringify(String(r.body).slice(0, 120))}`;
      return `${r.method} ${r.path.slice(0, 160)} ${JSON.stringify(headers)}${body}`;
    };

    await fc.assert(
      fc.asyncProperty(fc.array(requestArb, { minLength: BATCH, maxLength: BATCH }), async (batch) => {
        const answers = await Promise.all(batch.map((r) => client.send(r)));
        let ok = true;
        answers.forEach((res, i) => {
          const req = batch[i]!;
          sent++;
          routes.add(req.route);
          const problem = judge(req, res);
          if (problem) {
            ok = false;
            if (violations.length < 20) violations.push(`${describeReq(req)}\n    → ${problem}`);
          }
        });
        return ok;
      }),
      { seed: SEED, numRuns: HTTP_RUNS, endOnFailure: true, interruptAfterTimeLimit: 240_000 },
    ).catch((err: Error) => {
      violations.unshift(err.message.split('\n').slice(0, 2).join('\n').slice(0, 600));
    });
    client.close();
    const httpSeconds = (performance.now() - started) / 1000;

    // Raw, malformed HTTP on fresh connections (a parse error closes the connection).
    let rawSent = 0;
    let rawFivexx = 0;
    let rawInvalid = 0;
    let rawClosedSilently = 0;
    const rawViolations: string[] = [];
    const rawBatch = 8;
    await fc.assert(
      fc.asyncProperty(fc.array(rawArb, { minLength: rawBatch, maxLength: rawBatch }), async (batch) => {
        const results = await Promise.all(batch.map((bytes) => rawExchange(serve.port, Buffer.from(bytes, 'latin1'), 5_000)));
        let ok = true;
        results.forEach((r, i) => {
          rawSent++;
          const res = parseRawResponse(r.text);
          if (!res) {
            rawClosedSilently++;
            return;
          }
          let problem: string | null = null;
          if (res.status >= 500) {
            rawFivexx++;
            problem = `${res.status}`;
          } else if (res.status >= 400) {
            const issues = problemIssues(res.status, res.headers, res.body);
            if (issues.length) {
              rawInvalid++;
              problem = `${res.status} not a valid problem: ${issues.join('; ')}`;
            }
          }
          if (problem) {
            ok = false;
            if (rawViolations.length < 10) rawViolations.push(`${JSON.stringify(batch[i]!.slice(0, 160))}\n    → ${problem} — ${JSON.stringify(r.text.slice(0, 300))}`);
          }
        });
        return ok;
      }),
      { seed: SEED + 1, numRuns: Math.ceil(RAW_RUNS / rawBatch), endOnFailure: true, interruptAfterTimeLimit: 30_000 },
    ).catch((err: Error) => {
      rawViolations.unshift(err.message.split('\n').slice(0, 2).join('\n').slice(0, 600));
    });

    // Healthy afterwards, and nothing was logged as an internal error or a crash.
    const health = await fetch(`${serve.base}/health`);
    const healthBody = (await health.json()) as { status?: string };
    const ready = await fetch(`${serve.base}/health/ready`);
    const errorLines = serve.logLines().filter((l) => Number(l.level) >= 50 || String(l.msg ?? '').includes('💥'));
    const seconds = (performance.now() - started) / 1000;

    const figures = {
      seed: SEED,
      requests: sent + rawSent,
      httpRequests: sent,
      rawRequests: rawSent,
      routesCovered: routes.size,
      routesListed: ROUTES.length,
      fivexx: fivexx + rawFivexx,
      invalidProblems: invalidProblems + rawInvalid,
      noAnswer,
      staleKeepAliveRetried: client.resets(),
      headOverflowWithBody: headOverflow,
      healthReportedUnhealthy: unhealthyReports,
      rawClosedWithoutAnswer: rawClosedSilently,
      serverErrorLogLines: errorLines.length,
      statusCounts: Object.fromEntries([...statuses.entries()].sort((a, b) => a[0] - b[0])),
      requestsPerSecond: Math.round(sent / httpSeconds),
      p95Ms: Math.round(percentile(latencies, 95) * 10) / 10,
      healthAfter: `${health.status} ${healthBody.status}`,
      readyAfter: ready.status,
      seconds: Math.round(seconds),
      command: REPRODUCE,
    };
    recordResult('fuzz', figures);

    expect(violations, violations.join('\n')).toEqual([]);
    expect(rawViolations, rawViolations.join('\n')).toEqual([]);
    expect(errorLines.map((l) => `${l.msg} ${JSON.stringify(l.err ?? '')}`.slice(0, 300))).toEqual([]);
    expect(sent + rawSent).toBeGreaterThanOrEqual(10_000);
    expect(routes.size).toBe(ROUTES.length);
    expect(health.status).toBe(200);
    expect(healthBody.status).toBe('healthy');
    expect(ready.status).toBe(200);
  });
});
