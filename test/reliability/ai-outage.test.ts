import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFixtureSite, type FixtureSite } from '../../src/diagnostics/fixture-site.js';
import { startFakeUpstream, type FakeRequest, type FakeUpstream } from '../support/fake-upstream.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { uniquePrefix } from '../support/service.js';
import { recordResult } from './results.js';
import { HttpLedger, sleep } from './support/faults-http.js';
import { closedLoop, isFinal, pollUntilFinal, scanAndWait, uniqueUrl, type ScanTrack } from './support/faults-scans.js';
import { DEFAULT_DEADLINES, errorLines, startServe, type ServeProcess } from './support/faults-serve.js';

/**
 * Scenario 4: the AI endpoint fails every call for 30 s while scans run, then recovers.
 * Guarantees: the `ai` breaker opens and later closes by itself; no scan fails because of the AI;
 * every scan whose AI call did not succeed is completed and marked `degraded: ["ai"]`; scans after
 * the recovery carry suggestions again.
 */

const ADMIN_TOKEN = 'reliability-admin-token-0123456789';
const ADMIN = { authorization: `Bearer ${ADMIN_TOKEN}` };
const COMPLETIONS = '/v1/chat/completions';
const OUTAGE_MS = 30_000;
const HEALTHY_BEFORE_MS = 12_000;
// Shorter than the 30 s default so trial calls also fail (and reopen the breaker) inside the outage.
const HALF_OPEN = '10s';
const CLIENTS = 3;
// How long the load may go on after the AI recovers while waiting for the breaker to close.
const RECOVERY_BOUND_MS = 45_000;
// Two pages with violations (their scans ask the AI) for one without (its scans never do).
const PAGES = ['/violations.html', '/violations.html', '/clean.html'];

let redis: RedisServer;
let site: FixtureSite;
let ai: FakeUpstream;
let server: ServeProcess | undefined;

// The fault: while `failing`, every AI call answers a 5xx (rotating over the codes a proxy or the API sends).
let failing = false;
const decisions = new Map<FakeRequest, boolean>();
const FAILURES = [500, 502, 503];

beforeAll(async () => {
  [redis, site, ai] = await Promise.all([startRedisServer(), startFixtureSite(), startFakeUpstream()]);
  let n = 0;
  ai.on(COMPLETIONS, (req) => {
    const fail = failing;
    decisions.set(req, !fail);
    if (fail) return { status: FAILURES[n++ % FAILURES.length]!, json: { error: { message: 'injected outage' } } };
    // The rules asked about: one line of JSON between the prompt's delimiter lines.
    const block = /^BEGIN_RULES_JSON\n(.*)\nEND_RULES_JSON$/m.exec(String(req.body?.messages?.[1]?.content ?? ''));
    const rules = block ? (JSON.parse(block[1]!) as Array<{ rule: string }>).map((r) => r.rule) : [];
    const content = JSON.stringify({ suggestions: rules.map((rule) => ({ rule, fix: `Fix ${rule} as the rule's help describes.` })) });
    return { json: { id: `chatcmpl-${decisions.size}`, choices: [{ index: 0, message: { role: 'assistant', content } }] } };
  });
});

afterAll(async () => {
  server?.kill();
  await Promise.allSettled([redis?.close(), site?.close(), ai?.close()]);
});

describe('scenario 4: AI endpoint outage while scans run', () => {
  it('opens and closes the ai breaker; no scan fails, outage scans are degraded, later scans have suggestions', async () => {
    const started = Date.now();
    server = await startServe({
      redisUrl: redis.url,
      prefix: uniquePrefix('rel_ai'),
      settings: {
        ADMIN_TOKEN,
        ALERTS_ENABLED: 'false',
        WORKER_CONCURRENCY: '2',
        ...DEFAULT_DEADLINES,
        AI_ENABLED: 'true',
        AI_BASE_URL: ai.url('/v1'),
        AI_API_KEY: 'sk-reliability-0123456789',
        AI_BREAKER_HALF_OPEN: HALF_OPEN,
      },
    });
    const srv = server;
    const http = new HttpLedger(srv.base, 'ai');
    const tracks: ScanTrack[] = [];
    const stop = new AbortController();

    // The breaker as /health/detailed reports it, polled through the run.
    const observed: Array<{ at: number; state: string }> = [];
    const monitor = (async () => {
      for (let i = 0; i < 1_000 && !stop.signal.aborted; i++) {
        const res = await http.get('/health/detailed', { timeoutMs: 10_000 });
        const state = res.json?.circuitBreakers?.services?.ai?.state as string | undefined;
        if (state && observed.at(-1)?.state !== state) observed.push({ at: Date.now(), state });
        await sleep(500, stop.signal);
      }
    })();

    let seq = 0;
    const load = closedLoop(CLIENTS, stop.signal, 400, async () => {
      const n = seq++;
      const track = await scanAndWait(http, uniqueUrl(site.origin, PAGES[n % PAGES.length]!, `ai-${n}`), { waitS: 60, deadlineMs: 150_000 });
      tracks.push(track);
    });

    const loadStart = Date.now();
    await sleep(HEALTHY_BEFORE_MS);
    const outageStart = Date.now();
    failing = true;
    await sleep(OUTAGE_MS);
    failing = false;
    const outageEnd = Date.now();

    // Keep the load on until the breaker has closed and three scans submitted after that finished.
    const closedAt = (): number | undefined => {
      const line = srv.events('breaker.state').find((l) => l.breaker === 'ai' && l.to === 'CLOSED' && Date.parse(String(l.time)) >= outageEnd);
      return line ? Date.parse(String(line.time)) : undefined;
    };
    for (let i = 0; i < 1_000 && Date.now() - outageEnd < RECOVERY_BOUND_MS; i++) {
      const closed = closedAt();
      if (closed !== undefined && tracks.filter((t) => t.submit.startedAt > closed && (t.view?.result?.violations?.length ?? 0) > 0).length >= 3) break;
      await sleep(500);
    }
    stop.abort();
    await load;
    await monitor;
    const loadEnd = Date.now();
    // Scans whose client gave up waiting are read once more (bounded) so every accepted scan is judged.
    await Promise.all(tracks.filter((t) => t.id && !isFinal(t.view)).map((t) => pollUntilFinal(http, t, Date.now() + 60_000)));

    const accepted = tracks.filter((t) => t.id);
    const finished = accepted.filter((t) => isFinal(t.view));
    const completed = accepted.filter((t) => t.view?.status === 'completed');
    const failed = accepted.filter((t) => t.view?.status === 'failed');
    const degraded = completed.filter((t) => t.view?.result?.degraded);
    const withSuggestions = completed.filter((t) => (t.view?.result?.suggestions?.length ?? 0) > 0);
    const asking = completed.filter((t) => (t.view?.result?.violations?.length ?? 0) > 0);
    const inOutage = asking.filter((t) => t.submit.startedAt >= outageStart && Date.parse(t.view!.finishedAt) <= outageEnd);
    const closed = closedAt();
    const afterClose = closed === undefined ? [] : asking.filter((t) => t.submit.startedAt > closed);
    const transitions = srv.events('breaker.state').filter((l) => l.breaker === 'ai');
    const firstOpen = transitions.find((l) => l.to === 'OPEN');
    const aiCalls = ai.requestsTo(COMPLETIONS);
    const outageCalls = aiCalls.filter((r) => decisions.get(r) === false);
    const shortCircuited = srv.events('scan.degraded').filter((l) => l.integration === 'ai' && l.code === 'CIRCUIT_OPEN');
    const dlq = await http.get('/admin/dlq/stats', { headers: ADMIN });
    const health = await http.get('/health/detailed');
    // OVERLOADED (with Retry-After) is the server shedding load when the machine starves it: an
    // answer about the machine, not about the AI, counted apart. Every other 5xx fails the scenario.
    const serverErrors = http.serverErrors(['OVERLOADED']);
    const overloaded = http.calls.filter((c) => c.status === 503 && c.json?.code === 'OVERLOADED').length;

    recordResult('ai-outage', {
      load: `${CLIENTS} closed-loop clients submitting scans (Prefer: wait) of fixture pages with violations through serve with an embedded worker (concurrency 2), AI enabled`,
      faults: `AI chat completions answer 500/502/503 to every call for ${OUTAGE_MS / 1000} s, then recover (AI_BREAKER_HALF_OPEN=${HALF_OPEN}, AI_BREAKER_FAILURES=5, AI_ATTEMPTS=2)`,
      loadSeconds: Math.round((loadEnd - loadStart) / 1000),
      scans: accepted.length,
      scansAskingAi: asking.length,
      completed: completed.length,
      failed: failed.length,
      lost: accepted.length - finished.length,
      degraded: degraded.length,
      degradedDuringOutage: inOutage.length,
      withSuggestions: withSuggestions.length,
      withSuggestionsAfterClose: afterClose.filter((t) => (t.view?.result?.suggestions?.length ?? 0) > 0).length,
      http5xx: serverErrors.length,
      overloaded503: overloaded,
      unanswered: http.unanswered().length,
      dlq: dlq.json?.total ?? null,
      aiCalls: aiCalls.length,
      aiCallsFailed: outageCalls.length,
      callsShortCircuited: shortCircuited.length,
      breakerTransitions: transitions.map((l) => `${String(l.from)}>${String(l.to)}`),
      breakerOpenedAfterSeconds: firstOpen ? round1((Date.parse(String(firstOpen.time)) - outageStart) / 1000) : null,
      recoveredInSeconds: closed !== undefined ? round1((closed - outageEnd) / 1000) : null,
      healthObserved: observed.map((o) => `${o.state}@${round1((o.at - outageStart) / 1000)}s`),
      durationSeconds: Math.round((Date.now() - started) / 1000),
      command: 'npx vitest run --config vitest.reliability.config.ts test/reliability/ai-outage.test.ts',
    });

    const context = JSON.stringify({ transitions: transitions.map((l) => [l.time, l.from, l.to]), observed }, null, 1);
    // Load held through the outage and past the recovery.
    expect(accepted.length, context).toBeGreaterThanOrEqual(10);
    expect(http.unanswered(), context).toEqual([]);
    expect(serverErrors.map((c) => `${c.method} ${c.path} ${c.status}`)).toEqual([]);
    // Zero scans failed, none lost, none dead-lettered.
    expect(failed.map((t) => [t.id, t.view?.error]), context).toEqual([]);
    expect(accepted.length - finished.length).toBe(0);
    expect(dlq.json?.total).toBe(0);
    // A scan with violations either has suggestions or is marked degraded by the AI alone, never both,
    // exactly as the fake answered (or not) its AI call: the scan's request id is on the AI request.
    // A scan without violations asks nothing and is never degraded, outage or not.
    const servedIds = new Set(aiCalls.filter((r) => decisions.get(r) === true).map((r) => String(r.headers['x-request-id'])));
    const askedIds = new Set(aiCalls.map((r) => String(r.headers['x-request-id'])));
    for (const t of completed) {
      const result = t.view!.result;
      const asks = result.violations.length > 0;
      const served = servedIds.has(t.submit.requestId);
      expect({ id: t.id, asks, served, degraded: result.degraded ?? null, suggestions: (result.suggestions?.length ?? 0) > 0 }).toEqual({
        id: t.id,
        asks,
        served,
        degraded: asks && !served ? ['ai'] : null,
        suggestions: served,
      });
      if (!asks) expect(askedIds.has(t.submit.requestId)).toBe(false);
    }
    // The outage hit scans, and every scan that ran entirely inside it is degraded.
    expect(degraded.length, context).toBeGreaterThanOrEqual(2);
    for (const t of inOutage) expect(t.view!.result.degraded).toEqual(['ai']);
    // The breaker opened during the outage and spared the AI calls while open...
    expect(firstOpen, context).toBeDefined();
    expect(Date.parse(String(firstOpen!.time))).toBeGreaterThanOrEqual(outageStart);
    expect(observed.some((o) => o.state === 'OPEN'), context).toBe(true);
    expect(shortCircuited.length, context).toBeGreaterThan(0);
    // ...and closed by itself after the recovery; scans after that have suggestions again.
    expect(closed, context).toBeDefined();
    expect(afterClose.length).toBeGreaterThanOrEqual(1);
    for (const t of afterClose) expect(t.view!.result.suggestions?.length, t.id).toBeGreaterThan(0);
    expect(health.json?.circuitBreakers?.services?.ai?.state).toBe('CLOSED');
    expect(health.json?.circuitBreakers?.healthy).toBe(true);
    expect(errorLines(srv).map((l) => l.msg)).toEqual([]);

    srv.proc.kill('SIGTERM');
    expect((await srv.exited).code).toBe(0);
  });
});

function round1(n: number): number {
  return Math.round(n * 10) / 10;
}
