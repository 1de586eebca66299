import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PageResult } from '../../src/domain/scan.js';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-upstream.js';
import { page, startFixtureServer, type FixtureServer } from '../support/fixture-server.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { startTestService, waitFor, type TestService } from '../support/service.js';

/**
 * A real worker (Redis child, Chromium, startService) scanning loopback pages while fake OpenAI
 * and HubSpot servers answer on loopback: a failing AI degrades scans without failing them, its
 * breaker opens and later closes; HubSpot notes are attached and their failures recorded.
 */

const GIF = 'data:image/gif;base64,R0lGODlhAQABAAAAACH5BAEKAAEALAAAAAABAAEAAAICTAEAOw==';
const VIOLATING = page(`<h1>Violations</h1><img src="${GIF}"><input type="text">`);
const AI_KEY = 'sk-test-ai-key-0123456789';
const HUBSPOT_TOKEN = 'pat-test-hubspot-0123456789';
const ADMIN = { authorization: 'Bearer admin-token-0123456789' };
const HALF_OPEN_MS = 1_500;

let redis: RedisServer;
let fixture: FixtureServer;
let ai: FakeUpstream;
let hubspot: FakeUpstream;
let svc: TestService;
let aiHealthy = false;

const completions = '/v1/chat/completions';

beforeAll(async () => {
  [redis, fixture, ai, hubspot] = await Promise.all([startRedisServer(), startFixtureServer(), startFakeUpstream(), startFakeUpstream()]);
  for (let i = 0; i < 8; i++) fixture.html(`/p${i}.html`, VIOLATING);
  ai.on(completions, () =>
    aiHealthy
      ? {
          json: {
            id: 'chatcmpl-1',
            choices: [{ index: 0, message: { role: 'assistant', content: JSON.stringify({ suggestions: [{ rule: 'image-alt', fix: 'Add an alt attribute describing the image.' }, { rule: 'label', fix: 'Associate a <label> with the input.' }, { rule: 'not-asked', fix: 'x' }] }) } }],
          },
        }
      : { status: 500, json: { error: { message: 'upstream exploded' } } },
  );
  hubspot.on('/crm/v3/objects/companies/search', (req) => {
    const domain = req.body?.filterGroups?.[0]?.filters?.[0]?.value;
    if (domain === '127.0.0.1') return { json: { total: 1, results: [{ id: '501', properties: { name: 'Loopback Inc', domain } }] } };
    if (domain === 'localhost') return { json: { total: 1, results: [{ id: '777', properties: { name: 'Broken CRM Ltd', domain } }] } };
    return { json: { total: 0, results: [] } };
  });
  hubspot.on('/crm/v3/objects/notes', (req) => (req.body?.associations?.[0]?.to?.id === '777' ? { status: 503, headers: { 'retry-after': '0' }, text: 'hubspot down' } : { status: 201, json: { id: `note-${hubspot.requestsTo('/crm/v3/objects/notes').length}` } }));
  svc = await startTestService({
    redisUrl: redis.url,
    worker: 1,
    settings: {
      ADMIN_TOKEN: 'admin-token-0123456789',
      WCAGAI_URL: 'https://wcagai.example',
      ALERTS_ENABLED: 'false',
      AI_ENABLED: 'true',
      AI_BASE_URL: ai.url('/v1'),
      AI_API_KEY: AI_KEY,
      AI_MODEL: 'test-model',
      AI_MAX_TOKENS: '300',
      AI_ATTEMPTS: '1',
      AI_BREAKER_FAILURES: '2',
      AI_BREAKER_HALF_OPEN: `${HALF_OPEN_MS}ms`,
      HUBSPOT_SYNC: 'true',
      HUBSPOT_BASE_URL: hubspot.origin,
      HUBSPOT_TOKEN,
      HUBSPOT_ATTEMPTS: '2',
      HUBSPOT_BACKOFF: '50ms',
    },
  });
});

afterAll(async () => {
  await svc?.close();
  await Promise.allSettled([redis?.close(), fixture?.close(), ai?.close(), hubspot?.close()]);
});

/** Submits a scan of `url` and waits for its final record (the HubSpot outcome included). */
async function scan(url: string, requestId: string): Promise<{ id: string; view: Record<string, any>; result: PageResult }> {
  const res = await svc.post('/api/scans', { url }, { 'x-request-id': requestId });
  expect(res.status, res.body).toBe(202);
  const id = res.json.id as string;
  await svc.finished(id);
  const view = await waitFor(
    async () => {
      const v = (await svc.get(`/api/scans/${id}`)).json;
      return v.result?.integrations?.hubspot?.status !== 'pending' ? v : undefined;
    },
    { what: `the HubSpot outcome of ${id}` },
  );
  return { id, view, result: view.result as PageResult };
}

const breakerOf = async (name: string) => (await svc.get('/health/detailed')).json.circuitBreakers.services[name];

describe('AI suggestions behind a breaker, HubSpot notes (real worker, fake services on loopback)', () => {
  it('completes scans marked degraded while the AI answers 500, opens its breaker after the configured failures and stops calling', async () => {
    const first = await scan(fixture.url('/p0.html'), 'req-ai-1');
    expect(first.view.status).toBe('completed');
    expect(first.result.violations.map((v) => v.id).sort()).toEqual(['image-alt', 'label']);
    expect(first.result.degraded).toEqual(['ai']);
    expect(first.result.suggestions).toBeUndefined();

    // The one request of the scan: batched over its rules, bounded tokens, key and request id forwarded.
    const [call] = ai.requestsTo(completions);
    expect(call!.headers.authorization).toBe(`Bearer ${AI_KEY}`);
    expect(call!.headers['x-request-id']).toBe('req-ai-1');
    // max_tokens sized to the two rules asked, AI_MAX_TOKENS (300) at most.
    expect(call!.body).toMatchObject({ model: 'test-model', max_tokens: 136 });
    const prompt = call!.body.messages[1].content as string;
    expect(prompt).toContain('"rule":"image-alt"');
    expect(prompt).toContain('"rule":"label"');

    expect((await breakerOf('ai')).state).toBe('CLOSED');
    const second = await scan(fixture.url('/p1.html'), 'req-ai-2');
    expect(second.result.degraded).toEqual(['ai']);
    expect(ai.requestsTo(completions)).toHaveLength(2);

    const health = (await svc.get('/health/detailed')).json;
    expect(health.status).toBe('degraded');
    expect(health.circuitBreakers.healthy).toBe(false);
    expect(health.circuitBreakers.services.ai).toMatchObject({ state: 'OPEN', failures: 2 });
    expect(Date.parse(health.circuitBreakers.services.ai.openedAt)).not.toBeNaN();
    expect(Object.keys(health.circuitBreakers.services).sort()).toEqual(['ai', 'apollo', 'hubspot', 'pagerduty', 'slack']);

    // Open: the next scan completes without asking the AI at all.
    const third = await scan(fixture.url('/p2.html'), 'req-ai-3');
    expect(third.view.status).toBe('completed');
    expect(third.result.degraded).toEqual(['ai']);
    expect(ai.requestsTo(completions)).toHaveLength(2);
    expect(svc.logs.events('scan.degraded', (e) => e.code === 'CIRCUIT_OPEN')).toHaveLength(1);
    // Never failed, never dead-lettered.
    expect(await svc.service.dlq.size()).toBe(0);
    // The gauge the metrics owner declared follows the breaker (2 = open).
    const metrics = await svc.get('/metrics');
    expect(metrics.body).toMatch(/^wcagai_circuit_breaker_state\{service="ai"\} 2$/m);
    expect(metrics.body).toMatch(/^wcagai_circuit_breaker_state\{service="hubspot"\} 0$/m);
    expect(metrics.body).toMatch(/^wcagai_alerts_firing\{severity="critical"\} 0$/m);
  });

  it('shows the breakers in worker heartbeats, and in GET /admin/breakers once, as the process own', async () => {
    const beat = await waitFor(
      async () => {
        const workers = (await svc.get('/api/workers')).json.workers as Array<Record<string, any>>;
        // OPEN, or HALF_OPEN once its HALF_OPEN_MS have passed (with no call since, no trial in flight).
        return workers.find((w) => w.breakers?.ai?.failures === 2 && ['OPEN', 'HALF_OPEN'].includes(w.breakers.ai.state));
      },
      { timeoutMs: 12_000, what: 'a heartbeat with the open AI breaker' },
    );
    expect(beat.breakers.ai).toMatchObject({ failures: 2, trialInFlight: false, halfOpenAfterMs: HALF_OPEN_MS });
    // The embedded worker's heartbeat holds this process's breakers: not listed a second time as a worker.
    const res = await svc.get('/admin/breakers', ADMIN);
    expect(res.status).toBe(200);
    expect(res.json.process).toMatchObject({ role: 'worker', breakers: { ai: { failures: 2, openedAt: beat.breakers.ai.openedAt, trialInFlight: false } } });
    expect(['OPEN', 'HALF_OPEN']).toContain(res.json.process.breakers.ai.state);
    expect(res.json.workers).toEqual([]);
    expect(res.json.apiProcesses).toEqual([]);
  });

  it('half-opens after the backoff and closes when the AI recovers: suggestions are stored with the scan', async () => {
    aiHealthy = true;
    const openedAt = Date.parse((await breakerOf('ai')).openedAt);
    await new Promise((r) => setTimeout(r, Math.max(0, openedAt + HALF_OPEN_MS + 50 - Date.now())));
    const healed = await scan(fixture.url('/p3.html'), 'req-ai-4');
    expect(healed.result.degraded).toBeUndefined();
    expect(healed.result.suggestions).toEqual([
      { rule: 'image-alt', fix: 'Add an alt attribute describing the image.' },
      { rule: 'label', fix: 'Associate a <label> with the input.' },
    ]);
    expect(ai.requestsTo(completions)).toHaveLength(3);
    expect(await breakerOf('ai')).toMatchObject({ state: 'CLOSED', failures: 0, openedAt: null });
    const transitions = svc.logs.events('breaker.state', (e) => e.breaker === 'ai').map((e) => `${String(e.from)}>${String(e.to)}`);
    expect(transitions).toEqual(['CLOSED>OPEN', 'OPEN>HALF_OPEN', 'HALF_OPEN>CLOSED']);
    expect((await svc.get('/health/detailed')).json.circuitBreakers.healthy).toBe(true);
  });

  it('attaches a HubSpot note with the summary and report link to the company of the scanned domain', async () => {
    const { id, result } = await scan(fixture.url('/p4.html'), 'req-hs-1');
    expect(result.integrations?.hubspot).toMatchObject({ status: 'done' });
    expect(result.integrations!.hubspot!.detail).toMatch(/^note note-\d+ on company 501$/);
    const notes = hubspot.requestsTo('/crm/v3/objects/notes');
    const note = notes.find((n) => String(n.body.properties.hs_note_body).includes(id))!;
    expect(note.headers.authorization).toBe(`Bearer ${HUBSPOT_TOKEN}`);
    expect(note.headers['x-request-id']).toBe('req-hs-1');
    expect(note.body.associations).toEqual([{ to: { id: '501' }, types: [{ associationCategory: 'HUBSPOT_DEFINED', associationTypeId: 190 }] }]);
    const body = note.body.properties.hs_note_body as string;
    expect(body).toContain(`https://wcagai.example/api/scans/${id}/report?format=html`);
    expect(body).toContain('2 rule(s) violated (2 critical) on 2 element(s)');
    const search = hubspot.requestsTo('/crm/v3/objects/companies/search').at(-1)!;
    expect(search.body.filterGroups[0].filters[0]).toEqual({ propertyName: 'domain', operator: 'EQ', value: '127.0.0.1' });
  });

  it('records a HubSpot failure on the scan after the policy retried it, and the scan stays completed', async () => {
    const before = hubspot.requestsTo('/crm/v3/objects/notes').length;
    const { view, result } = await scan(fixture.url('/p5.html', 'localhost'), 'req-hs-2');
    expect(view.status).toBe('completed');
    expect(result.suggestions).toHaveLength(2);
    expect(result.degraded).toEqual(['hubspot']);
    expect(result.integrations!.hubspot).toMatchObject({ status: 'failed', code: 'UPSTREAM_UNAVAILABLE' });
    expect(result.integrations!.hubspot!.detail).toContain('answered 503: hubspot down');
    expect(result.integrations!.hubspot!.detail).not.toContain(HUBSPOT_TOKEN);
    // HUBSPOT_ATTEMPTS=2: the note was tried twice (a note create is retried on a 503 with Retry-After: it was not processed).
    expect(hubspot.requestsTo('/crm/v3/objects/notes').length - before).toBe(2);
    expect(svc.logs.events('scan.degraded', (e) => e.integration === 'hubspot')).toHaveLength(1);
    expect(await svc.service.dlq.size()).toBe(0);
  });
});
