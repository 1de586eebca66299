/**
 * Hostile input, part 3: access control and secrets in logs, against a real `wcagai serve` process
 * (embedded worker, real Chromium, real Redis) configured with every secret it knows.
 *
 * - Every admin route refuses missing, wrong and near-miss admin tokens (prefix, suffix, case,
 *   whitespace inside, Basic instead of Bearer, another configured secret, token in the query or
 *   in another header) and path tricks that try to reach an admin route past the auth check.
 * - /api/* refuses missing and near-miss API keys; /metrics refuses without METRICS_TOKEN.
 * - After a full run (refused requests carrying the real secrets, a scan that calls the fake AI and
 *   HubSpot, alerts sent to fake Slack and PagerDuty, upstream failures on the way), the log file
 *   (LOG_FILE) and stdout are searched for every configured secret: zero hits.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-upstream.js';
import { page, startFixtureServer, type FixtureServer } from '../support/fixture-server.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { waitFor } from '../support/service.js';
import { recordResult } from './results.js';
import { httpClient, type RawAnswer } from './support/hostile-http.js';
import { problemIssues } from './support/hostile-problem.js';
import { startServe, type ServeProcess } from './support/hostile-serve.js';

const ADMIN_TOKEN = 'Adm1nT0ken-9f3c2b7e5d1a';
const API_KEY_A = 'ApiKeyAlpha-4e8d1c';
const API_KEY_B = 'ApiKeyBravo-7b2f9a';
const METRICS_TOKEN = 'MetricsT0ken-c81e55';
const AI_KEY = 'sk-AiSecret-0d94f7b2';
const HUBSPOT_TOKEN = 'pat-HubSecret-5a71c3';
const APOLLO_KEY = 'ApolloSecret-2c6e90';
const PD_KEY = 'PdRoutingSecret-b34f17';
const SLACK_SECRET = 'SlackHookSecret-e5a0d2';
// A Sentry public key is hex (the SDK refuses anything else, printing the DSN it refused).
const SENTRY_KEY = '5e1f3a9c0b7d42e8a6c4f2d0b9e7a5c3';
const REDIS_PASSWORD = 'RedisPassSecret-3f7a88';
const COMMAND = 'npx vitest run --config vitest.reliability.config.ts test/reliability/access.test.ts';

const GIF = 'data:image/gif;base64,R0lGODlhAQABAAAAACH5BAEKAAEALAAAAAABAAEAAAICTAEAOw==';

let redis: RedisServer;
let upstream: FakeUpstream;
let fixture: FixtureServer;
let serve: ServeProcess;
let dir: string;
let logFile: string;
let client: ReturnType<typeof httpClient>;
let aiCalls = 0;
let slackCalls = 0;
let pdCalls = 0;
const figures: Record<string, unknown> = {};

const ADMIN_ROUTES: Array<[string, string, string?]> = [
  ['GET', '/admin/queue'],
  ['POST', '/admin/queue/pause'],
  ['POST', '/admin/queue/resume'],
  ['GET', '/admin/dlq/jobs'],
  ['GET', '/admin/dlq/jobs/dlq_x'],
  ['DELETE', '/admin/dlq/jobs/dlq_x'],
  ['GET', '/admin/dlq/stats'],
  ['POST', '/admin/dlq/retry/dlq_x'],
  ['POST', '/admin/dlq/retry', '{"all":true}'],
  ['POST', '/admin/dlq/purge?olderThan=1ms'],
  ['GET', '/admin/breakers'],
  ['POST', '/admin/breakers/ai/reset'],
  ['POST', '/admin/breakers/ai/isolate'],
  ['GET', '/admin/alerts'],
  ['POST', '/admin/alerts/rss/silence', '{"for":"1h"}'],
  ['DELETE', '/admin/alerts/rss/silence'],
  ['GET', '/admin/snapshot'],
  ['GET', '/admin/events'],
];

/** Credentials that are not the admin token but come close, each as the headers that carry it. */
function nearMisses(token: string): Array<[string, Record<string, string>]> {
  const mid = Math.floor(token.length / 2);
  const swapCase = (s: string) => s.replace(/[a-z]/i, (c) => (c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase()));
  return [
    ['missing', {}],
    ['wrong', { authorization: 'Bearer not-the-admin-token-at-all' }],
    ['empty bearer', { authorization: 'Bearer ' }],
    ['scheme only', { authorization: 'Bearer' }],
    ['prefix', { authorization: `Bearer ${token.slice(0, -1)}` }],
    ['first half', { authorization: `Bearer ${token.slice(0, mid)}` }],
    ['suffix added', { authorization: `Bearer ${token}x` }],
    ['last character changed', { authorization: `Bearer ${token.slice(0, -1)}${token.endsWith('a') ? 'b' : 'a'}` }],
    ['upper case', { authorization: `Bearer ${token.toUpperCase()}` }],
    ['lower case', { authorization: `Bearer ${token.toLowerCase()}` }],
    ['one letter case swapped', { authorization: `Bearer ${swapCase(token)}` }],
    ['space inside', { authorization: `Bearer ${token.slice(0, mid)} ${token.slice(mid)}` }],
    ['tab inside', { authorization: `Bearer ${token.slice(0, mid)}\t${token.slice(mid)}` }],
    ['no space after scheme', { authorization: `Bearer${token}` }],
    ['no scheme', { authorization: token }],
    ['other scheme', { authorization: `Token ${token}` }],
    ['Basic, token as user', { authorization: `Basic ${Buffer.from(`${token}:`).toString('base64')}` }],
    ['Basic, token as password', { authorization: `Basic ${Buffer.from(`admin:${token}`).toString('base64')}` }],
    ['Basic, raw token', { authorization: `Basic ${token}` }],
    ['two credentials', { authorization: `Bearer wrong, Bearer ${token}` }],
    ['quoted', { authorization: `Bearer "${token}"` }],
    ['as X-API-Key', { 'x-api-key': token }],
    ['as X-Admin-Token', { 'x-admin-token': token }],
    ['as a cookie', { cookie: `token=${token}; admin_token=${token}` }],
    ['an API key', { authorization: `Bearer ${API_KEY_A}` }],
    ['the metrics token', { authorization: `Bearer ${METRICS_TOKEN}` }],
    ['another secret (AI key)', { authorization: `Bearer ${AI_KEY}` }],
  ];
}

beforeAll(async () => {
  [redis, upstream, fixture] = await Promise.all([startRedisServer(), startFakeUpstream(), startFixtureServer()]);
  fixture.html('/violations.html', page(`<h1>Violations</h1><img src="${GIF}"><input type="text">`));
  // Each upstream fails its first call, so the failure paths (and what they log) run too.
  upstream.on('/v1/chat/completions', () =>
    ++aiCalls === 1
      ? { status: 500, json: { error: { message: `upstream exploded for key ${AI_KEY}` } } }
      : { json: { id: 'c1', choices: [{ index: 0, message: { role: 'assistant', content: JSON.stringify({ suggestions: [{ rule: 'image-alt', fix: 'Add alt text.' }] }) } }] } },
  );
  upstream.on('/crm/v3/objects/companies/search', () => ({ json: { total: 1, results: [{ id: '501', properties: { name: 'Loopback Inc', domain: '127.0.0.1' } }] } }));
  upstream.on('/crm/v3/objects/notes', (req) => (upstream.requestsTo('/crm/v3/objects/notes').length === 1 ? { status: 503, text: `down; token was ${String(req.headers.authorization)}` } : { status: 201, json: { id: 'note-1' } }));
  upstream.on(`/services/T0/B0/${SLACK_SECRET}`, () => (++slackCalls === 1 ? { status: 500, text: 'slack exploded' } : { text: 'ok' }));
  upstream.on('/v2/enqueue', (req) => (++pdCalls === 1 ? { status: 500, json: { status: 'error' } } : { status: 202, json: { status: 'success', dedup_key: req.body?.dedup_key } }));
  upstream.on('/api/1/envelope/', () => ({ json: { id: 'e1' } }));

  dir = mkdtempSync(join(tmpdir(), 'wcagai-access-'));
  logFile = join(dir, 'logs', 'combined.log');
  const [, port] = /:(\d+)$/.exec(redis.url)!;
  const port_ = Number(port);
  serve = await startServe({
    redisUrl: `redis://default:${REDIS_PASSWORD}@127.0.0.1:${port_}`,
    args: ['--workers', '1'],
    readyTimeoutMs: 150_000,
    env: {
      LOG_FILE: logFile,
      LOG_LEVEL: 'debug',
      ADMIN_TOKEN,
      API_KEYS: `${API_KEY_A}, ${API_KEY_B}`,
      METRICS_TOKEN,
      WCAGAI_URL: 'https://wcagai.example',
      AI_ENABLED: 'true',
      AI_BASE_URL: upstream.url('/v1'),
      AI_API_KEY: AI_KEY,
      AI_ATTEMPTS: '1',
      HUBSPOT_SYNC: 'true',
      HUBSPOT_BASE_URL: upstream.origin,
      HUBSPOT_TOKEN,
      HUBSPOT_ATTEMPTS: '2',
      HUBSPOT_BACKOFF: '50ms',
      APOLLO_BASE_URL: upstream.origin,
      APOLLO_API_KEY: APOLLO_KEY,
      SLACK_WEBHOOK_URL: upstream.url(`/services/T0/B0/${SLACK_SECRET}`),
      SLACK_ATTEMPTS: '2',
      SLACK_BACKOFF: '50ms',
      PAGERDUTY_ROUTING_KEY: PD_KEY,
      PAGERDUTY_EVENTS_URL: upstream.url('/v2/enqueue'),
      PAGERDUTY_ATTEMPTS: '2',
      PAGERDUTY_BACKOFF: '50ms',
      SENTRY_DSN: `http://${SENTRY_KEY}@127.0.0.1:${new URL(upstream.origin).port}/1`,
      // An alert that fires at once (every process uses more than 1 MB), paging both channels.
      ALERTS_ENABLED: 'true',
      ALERTS_INTERVAL: '500ms',
      ALERT_RSS_THRESHOLD: '1',
      ALERT_RSS_SEVERITY: 'critical',
    },
  });
  client = httpClient(serve.base, 8);
}, 180_000);

afterAll(async () => {
  client?.close();
  await serve?.stop();
  await Promise.allSettled([redis?.close(), upstream?.close(), fixture?.close()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const send = (method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<RawAnswer> =>
  client.send({ method, path, headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers }, ...(body === undefined ? {} : { body }), headOnly: true, timeoutMs: 10_000 });

function refusal(res: RawAnswer, method: string, statuses: number[]): string | null {
  if (!statuses.includes(res.status)) return `answered ${res.status} ${res.body.slice(0, 160)}`;
  const issues = problemIssues(res.status, res.headers, res.body, method);
  return issues.length ? `not a valid problem: ${issues.join('; ')}` : null;
}

describe('access control', () => {
  it('every admin route refuses missing, wrong and near-miss tokens, and path tricks do not get past the check', async () => {
    const failures: string[] = [];
    let tried = 0;
    const attempts = nearMisses(ADMIN_TOKEN);
    for (const [method, path, body] of ADMIN_ROUTES) {
      for (const [label, headers] of attempts) {
        tried++;
        const res = await send(method, path, headers, body);
        const why = refusal(res, method, [401]);
        if (why) failures.push(`${method} ${path} with ${label}: ${why}`);
        else if (!String(res.headers['www-authenticate'] ?? '').startsWith('Bearer')) failures.push(`${method} ${path} with ${label}: no WWW-Authenticate`);
      }
      for (const query of [`token=${ADMIN_TOKEN}`, `access_token=${ADMIN_TOKEN}`, `authorization=Bearer%20${ADMIN_TOKEN}`]) {
        tried++;
        const url = `${path}${path.includes('?') ? '&' : '?'}${query}`;
        const why = refusal(await send(method, url, {}, body), method, [401]);
        if (why) failures.push(`${method} ${path} with the token in the query (${query.split('=')[0]}): ${why}`);
      }
    }
    // Paths that might route to an admin handler while escaping the "/admin/" prefix check.
    const tricks = ['//admin/queue/pause', '/%61pi/queue', '/%61dmin/dlq/stats', '/admin/%71ueue/pause', '/admin//queue/pause', '/%61dmin/queue/pause', '/ADMIN/queue/pause', '/admin%2Fqueue%2Fpause', '/admin/queue/pause/', '/admin/queue/pause?', '/admin;x/queue/pause', '/api/../admin/queue/pause', '/./admin/queue/pause', '/admin/queue/%70ause', '/admin/breakers/ai/isolate/', '/%2Fadmin/breakers/ai/isolate'];
    for (const path of tricks) {
      tried++;
      const why = refusal(await send('POST', path, { authorization: 'Bearer wrong-token' }), 'POST', [400, 401, 404]);
      if (why) failures.push(`POST ${path} (path trick): ${why}`);
    }
    // None of it did anything.
    const queue = JSON.parse((await send('GET', '/api/queue', { 'x-api-key': API_KEY_A })).body) as { paused?: boolean };
    const breakers = await send('GET', '/admin/breakers', { authorization: `Bearer ${ADMIN_TOKEN}` });
    const actions = serve.logLines().filter((l) => /^admin\.(queue|dlq|breaker)/.test(String(l.event ?? '')));
    figures.adminRoutes = ADMIN_ROUTES.length;
    figures.adminAttemptsRefused = tried - failures.length;
    figures.adminAttempts = tried;
    figures.nearMissVariants = attempts.length + 3;
    figures.pathTricks = tricks.length;
    figures.adminActionsTaken = actions.length;

    expect(failures, failures.join('\n')).toEqual([]);
    expect(queue.paused).toBe(false);
    expect(breakers.status).toBe(200);
    expect(breakers.body).not.toContain('ISOLATED');
    expect(actions.map((l) => l.event)).toEqual([]);
    // The real token still works, with the forms RFC 7235 allows (scheme in any case, extra spaces).
    for (const authorization of [`Bearer ${ADMIN_TOKEN}`, `bearer ${ADMIN_TOKEN}`, `Bearer   ${ADMIN_TOKEN}  `]) {
      expect((await send('GET', '/admin/dlq/stats', { authorization })).status, authorization).toBe(200);
    }
  });

  it('/api/* refuses missing and near-miss API keys; /metrics refuses without METRICS_TOKEN', async () => {
    const failures: string[] = [];
    let tried = 0;
    const routes: Array<[string, string, string?]> = [
      ['POST', '/api/scans', JSON.stringify({ url: fixture.url('/violations.html') })],
      ['POST', '/api/scan', JSON.stringify({ url: fixture.url('/violations.html') })],
      ['POST', '/api/batches', JSON.stringify({ urls: [fixture.url('/violations.html')] })],
      ['GET', '/api/scans/scan_x'],
      ['GET', '/api/scans/scan_x/report'],
      ['GET', '/api/batches/batch_x'],
      ['GET', '/api/queue'],
      ['GET', '/api/workers'],
    ];
    const keyMisses: Array<[string, Record<string, string>]> = [
      ['missing', {}],
      ['wrong', { 'x-api-key': 'nope' }],
      ['prefix', { 'x-api-key': API_KEY_A.slice(0, -1) }],
      ['suffix', { 'x-api-key': `${API_KEY_B}x` }],
      ['case', { 'x-api-key': API_KEY_A.toUpperCase() }],
      ['space inside', { 'x-api-key': `${API_KEY_A.slice(0, 5)} ${API_KEY_A.slice(5)}` }],
      ['the key list', { 'x-api-key': `${API_KEY_A},${API_KEY_B}` }],
      ['both keys joined', { authorization: `Bearer ${API_KEY_A}${API_KEY_B}` }],
      ['Basic', { authorization: `Basic ${Buffer.from(`${API_KEY_A}:`).toString('base64')}` }],
      ['admin token', { 'x-api-key': ADMIN_TOKEN }],
      ['metrics token', { authorization: `Bearer ${METRICS_TOKEN}` }],
    ];
    for (const [method, path, body] of routes) {
      for (const [label, headers] of keyMisses) {
        tried++;
        const why = refusal(await send(method, path, headers, body), method, [401]);
        if (why) failures.push(`${method} ${path} with ${label}: ${why}`);
      }
      tried++;
      const why = refusal(await send(method, `${path}${path.includes('?') ? '&' : '?'}api_key=${API_KEY_A}`, {}, body), method, [401]);
      if (why) failures.push(`${method} ${path} with the key in the query: ${why}`);
    }
    const metricsMisses: Array<Record<string, string>> = [{}, { authorization: 'Bearer nope' }, { authorization: `Bearer ${METRICS_TOKEN}x` }, { authorization: `Bearer ${ADMIN_TOKEN}` }, { authorization: `Basic ${METRICS_TOKEN}` }];
    for (const headers of metricsMisses) {
      tried++;
      const res = await send('GET', '/metrics', headers);
      const why = refusal(res, 'GET', [401]);
      if (why) failures.push(`GET /metrics with ${JSON.stringify(headers)}: ${why}`);
      if (res.body.includes('wcagai_')) failures.push('GET /metrics leaked metrics without the token');
    }
    figures.apiKeyAttempts = tried;
    figures.apiKeyAttemptsRefused = tried - failures.length;
    expect(failures, failures.join('\n')).toEqual([]);
    expect((await send('GET', '/api/queue', { 'x-api-key': API_KEY_B })).status).toBe(200);
    expect((await send('GET', '/api/queue', { authorization: `Bearer ${API_KEY_A}` })).status).toBe(200);
    expect((await send('GET', '/metrics', { authorization: `Bearer ${METRICS_TOKEN}` })).status).toBe(200);
    expect((await send('GET', '/health')).status).toBe(200);
  });
});

describe('secrets in logs', () => {
  it('after a full run, no configured secret appears in the log file or on stdout', async () => {
    // A scan through the API: AI suggestions (first call fails), a HubSpot note (first call fails, retried).
    const submitted = await send('POST', '/api/scans', { 'x-api-key': API_KEY_A, 'x-request-id': 'access-scan-1' }, JSON.stringify({ url: fixture.url('/violations.html') }));
    expect(submitted.status, submitted.body).toBe(202);
    const id = (JSON.parse(submitted.body) as { id: string }).id;
    const second = await send('POST', '/api/scans', { authorization: `Bearer ${API_KEY_B}` }, JSON.stringify({ url: fixture.url('/violations.html'), wcagLevel: 'AAA' }));
    expect(second.status, second.body).toBe(202);
    const secondId = (JSON.parse(second.body) as { id: string }).id;
    for (const scan of [id, secondId]) {
      await waitFor(
        async () => {
          const res = await send('GET', `/api/scans/${scan}`, { 'x-api-key': API_KEY_A });
          const view = JSON.parse(res.body) as { status: string; result?: { integrations?: { hubspot?: { status: string } } } };
          return (view.status === 'completed' || view.status === 'failed') && view.result?.integrations?.hubspot?.status !== 'pending' ? view : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 200, what: `scan ${scan} with its HubSpot outcome` },
      );
    }
    // Alerts reach Slack and PagerDuty (each failed once first).
    await waitFor(() => slackCalls >= 2 && pdCalls >= 2, { timeoutMs: 30_000, what: 'Slack and PagerDuty to be called twice' });
    // Refused requests carrying real secrets where they do not belong, and in query strings.
    for (const secret of [ADMIN_TOKEN, API_KEY_A, API_KEY_B, METRICS_TOKEN, AI_KEY, HUBSPOT_TOKEN, APOLLO_KEY, PD_KEY, SLACK_SECRET, SENTRY_KEY, REDIS_PASSWORD]) {
      await send('GET', '/api/queue', { authorization: `Bearer ${secret}x`, cookie: `session=${secret}`, 'x-api-key': `${secret}-` });
      await send('POST', '/admin/queue/pause', { authorization: `Basic ${secret}`, 'x-api-key': secret, 'proxy-authorization': `Bearer ${secret}` });
      await send('GET', '/metrics', { authorization: `Bearer ${secret}` });
    }
    for (const [name, value] of [['token', ADMIN_TOKEN], ['api_key', API_KEY_A], ['access_token', METRICS_TOKEN]] as const) {
      await send('GET', `/admin/dlq/stats?${name}=${value}`, {});
      await send('GET', `/api/queue?${name}=${value}`, {});
    }
    // A report of the scan and a detailed health read (both echo configuration-dependent fields).
    await send('GET', `/api/scans/${id}/report?format=html`, { 'x-api-key': API_KEY_A });
    await send('GET', '/health/detailed');
    await send('GET', '/admin/snapshot', { authorization: `Bearer ${ADMIN_TOKEN}` });

    // Stop the process so every buffered line reaches the file.
    const code = await serve.stop();
    expect(code).toBe(0);
    const file = readFileSync(logFile, 'utf8');
    const stdout = serve.output();
    const secrets: Record<string, string> = {
      ADMIN_TOKEN, API_KEY_A, API_KEY_B, METRICS_TOKEN, AI_API_KEY: AI_KEY, HUBSPOT_TOKEN, APOLLO_API_KEY: APOLLO_KEY,
      PAGERDUTY_ROUTING_KEY: PD_KEY, SLACK_WEBHOOK_URL: SLACK_SECRET, SENTRY_DSN: SENTRY_KEY, REDIS_URL: REDIS_PASSWORD,
    };
    const hits: string[] = [];
    for (const [name, secret] of Object.entries(secrets)) {
      for (const [where, text] of [['log file', file], ['stdout', stdout]] as const) {
        const lines = text.split('\n').filter((l) => l.includes(secret));
        for (const line of lines.slice(0, 3)) hits.push(`${name} in ${where}: ${line.slice(0, 400)}`);
        if (lines.length > 3) hits.push(`${name} in ${where}: ${lines.length - 3} more line(s)`);
      }
    }
    const lines = file.split('\n').filter(Boolean).length;
    Object.assign(figures, {
      logLines: lines,
      secretsConfigured: Object.keys(secrets).length,
      secretHitsInLogs: hits.length,
      aiCalls,
      hubspotCalls: upstream.requests.filter((r) => r.path.startsWith('/crm/')).length,
      slackCalls,
      pagerdutyCalls: pdCalls,
      command: COMMAND,
    });
    recordResult('access', figures);

    expect(lines).toBeGreaterThan(50);
    expect(aiCalls).toBeGreaterThanOrEqual(2);
    expect(file).toContain('access-scan-1');
    // The query-string attempts were logged, with their values masked.
    expect(file).toContain('?token=[redacted]');
    expect(hits, hits.join('\n')).toEqual([]);
  });
});
