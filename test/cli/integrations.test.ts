import { createServer, type AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keysFor } from '../../src/queue/keys.js';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-upstream.js';
import { startLockedRedisServer, startRedisServer, type RedisServer } from '../support/redis-server.js';
import { startTestService, uniquePrefix, type TestService } from '../support/service.js';
import { runCli } from './run-cli.js';

/** `wcagai alerts test` against fake Slack and PagerDuty; `wcagai prospect` against a fake Apollo. */

const APOLLO_KEY = 'apollo-key-0123456789';
const SLACK_PATH = '/services/T1/B1/WEBHOOKSECRET77';
const ROUTING_KEY = 'PDROUTINGKEY0123456';

let redis: RedisServer;
let slack: FakeUpstream;
let pagerduty: FakeUpstream;
let apollo: FakeUpstream;
let api: TestService;
let apiBase: string;

/** Only what a CLI run needs: none of the developer's own integration settings leak in. */
const clean = { SLACK_WEBHOOK_URL: '', PAGERDUTY_ROUTING_KEY: '', APOLLO_API_KEY: '', WCAGAI_URL: '', ADMIN_TOKEN: '', API_KEYS: '' };

beforeAll(async () => {
  [redis, slack, pagerduty, apollo] = await Promise.all([startRedisServer(), startFakeUpstream(), startFakeUpstream(), startFakeUpstream()]);
  slack.on(SLACK_PATH, () => ({ text: 'ok' }));
  slack.on('/services/T1/B1/REVOKED', () => ({ status: 404, text: 'no_service' }));
  pagerduty.on('/v2/enqueue', (req) => ({ status: 202, json: { status: 'success', message: 'Event processed', dedup_key: req.body?.dedup_key } }));
  // Loopback addresses stand in for company websites: they need no DNS and pass ALLOW_PRIVATE_TARGETS.
  apollo.on('/api/v1/mixed_companies/search', (req) => {
    const page = req.body?.page ?? 1;
    if (page === 1) {
      return {
        json: {
          organizations: [
            { name: 'Acme Access', website_url: 'http://127.0.0.2', primary_domain: '127.0.0.2' },
            { name: 'No Site Ltd', website_url: null, primary_domain: null },
            { name: 'Acme Again', website_url: 'https://127.0.0.2/about' },
          ],
          accounts: [{ name: 'Beta Bank', primary_domain: '127.0.0.3' }],
          pagination: { page: 1, per_page: 3, total_entries: 5, total_pages: 2 },
        },
      };
    }
    return { json: { organizations: [{ name: 'Gamma Gov', website_url: 'https://127.0.0.4' }], accounts: [], pagination: { page: 2, per_page: 3, total_entries: 5, total_pages: 2 } } };
  });
  api = await startTestService({ redisUrl: redis.url, settings: { ALERTS_ENABLED: 'false' } });
  await api.service.app!.listen({ port: 0, host: '127.0.0.1' });
  apiBase = `http://127.0.0.1:${(api.service.app!.server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await api?.close();
  await Promise.allSettled([redis?.close(), slack?.close(), pagerduty?.close(), apollo?.close()]);
});

describe('wcagai alerts test', () => {
  it('sends a test alert to every configured channel and prints what each answered', async () => {
    const run = await runCli(['alerts', 'test', '--severity', 'critical'], {
      env: { ...clean, SLACK_WEBHOOK_URL: slack.url(SLACK_PATH), PAGERDUTY_ROUTING_KEY: ROUTING_KEY, PAGERDUTY_EVENTS_URL: pagerduty.url('/v2/enqueue'), QUEUE_PREFIX: 'prod' },
    });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const lines = run.stdout.trim().split('\n');
    expect(lines[0]).toBe('slack trigger: 200 ok');
    expect(lines[1]).toMatch(/^pagerduty trigger: 202 \{"status":"success","message":"Event processed","dedup_key":"wcagai\/prod\/test-\d+"\}$/);
    expect(lines[2]).toMatch(/^pagerduty resolve: 202 \{"status":"success"/);
    expect(lines).toHaveLength(3);
    expect(slack.requestsTo(SLACK_PATH).at(-1)!.body.text).toMatch(/^\[critical\] \[TEST\] wcagai test alert/);
    const [trigger, resolve] = pagerduty.requestsTo('/v2/enqueue').slice(-2);
    expect(trigger!.body).toMatchObject({ routing_key: ROUTING_KEY, event_action: 'trigger', payload: { severity: 'critical' } });
    expect(resolve!.body).toEqual({ routing_key: ROUTING_KEY, event_action: 'resolve', dedup_key: trigger!.body.dedup_key });
  });

  it('prints a failing channel as FAILED with its code (never the webhook secret) and exits 1', async () => {
    const run = await runCli(['alerts', 'test'], { env: { ...clean, SLACK_WEBHOOK_URL: slack.url('/services/T1/B1/REVOKED') } });
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/^slack trigger: FAILED UPSTREAM_REJECTED: slack: POST http:\/\/127\.0\.0\.1:\d+ answered 404: no_service\n$/);
    expect(run.stdout + run.stderr).not.toContain('REVOKED');
  });

  it('says so when no channel is configured', async () => {
    const run = await runCli(['alerts', 'test'], { env: clean });
    expect(run.code).toBe(1);
    expect(run.stderr).toBe('wcagai: no alert channel configured: set SLACK_WEBHOOK_URL and/or PAGERDUTY_ROUTING_KEY\n');
  });
});

describe('wcagai prospect', () => {
  const env = () => ({ ...clean, APOLLO_API_KEY: APOLLO_KEY, APOLLO_BASE_URL: apollo.origin, ALLOW_PRIVATE_TARGETS: 'true', REDIS_URL: redis.url });

  it('finds company websites with Apollo and queues them as one batch through the API', async () => {
    const before = apollo.requests.length;
    const run = await runCli(['prospect', '--query', 'accessibility, saas', '--location', 'Berlin, Germany', '--limit', '3', '--level', 'AAA', '--url', apiBase], { env: env() });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const searches = apollo.requests.slice(before);
    expect(searches).toHaveLength(2);
    expect(searches[0]!.headers['x-api-key']).toBe(APOLLO_KEY);
    expect(searches[0]!.body).toEqual({ q_organization_keyword_tags: ['accessibility', 'saas'], organization_locations: ['Berlin, Germany'], page: 1, per_page: 10 });
    expect(run.stdout).toContain('https://127.0.0.2/  Acme Access\nhttps://127.0.0.3/  Beta Bank\nhttps://127.0.0.4/  Gamma Gov\n');
    const id = /queued batch (batch_[\w-]+): 3 scan\(s\) at WCAG 2\.2 AAA \(through http/.exec(run.stdout)?.[1];
    expect(id, run.stdout).toBeDefined();
    const batch = await api.get(`/api/batches/${id}`);
    expect(batch.status).toBe(200);
    expect(batch.json.total).toBe(3);
    expect(batch.json.scans.map((s: any) => s.url).sort()).toEqual(['https://127.0.0.2/', 'https://127.0.0.3/', 'https://127.0.0.4/']);
    const first = await api.get(`/api/scans/${batch.json.scans[0].id}`);
    expect(first.json.options.wcagLevel).toBe('AAA');
  });

  it('queues straight into Redis when no server is given', async () => {
    const prefix = uniquePrefix('prospect');
    const run = await runCli(['prospect', '--query', 'fintech', '--limit', '2', '--json'], { env: { ...env(), QUEUE_PREFIX: prefix } });
    expect(run.code, run.stderr).toBe(0);
    const out = JSON.parse(run.stdout) as { companies: Array<{ domain: string }>; batch: { id: string; total: number; via: string } };
    expect(out.companies.map((c) => c.domain)).toEqual(['127.0.0.2', '127.0.0.3']);
    expect(out.batch).toMatchObject({ total: 2, via: 'redis' });
    const conn = new Redis(redis.url);
    try {
      const stored = JSON.parse((await conn.get(keysFor(prefix).batch(out.batch.id)))!) as { ids: string[] };
      expect(stored.ids).toHaveLength(2);
      expect(await conn.llen(keysFor(prefix).wait) + (await conn.zcard(keysFor(prefix).prioritized))).toBe(2);
    } finally {
      conn.disconnect();
    }
  });

  it('with --json, still prints the companies when nothing could be queued, and exits 1', async () => {
    // A port nothing listens on: Redis cannot be reached, after Apollo was already paid for the search.
    const closed = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as AddressInfo;
        probe.close(() => resolve(port));
      });
    });
    const run = await runCli(['prospect', '--query', 'fintech', '--limit', '2', '--json'], { env: { ...env(), REDIS_URL: `redis://127.0.0.1:${closed}` } });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^wcagai: cannot reach Redis at /);
    const out = JSON.parse(run.stdout) as { companies: Array<{ domain: string }>; batch: null; error: { code: string; message: string } };
    expect(out.companies.map((c) => c.domain)).toEqual(['127.0.0.2', '127.0.0.3']);
    expect(out.batch).toBeNull();
    expect(out.error.code).toBe('REDIS_UNAVAILABLE');
  });

  it('says the --url way round a Redis that refuses the password, as for one it cannot reach', async () => {
    const locked = await startLockedRedisServer('right-pw-0123');
    try {
      const run = await runCli(['prospect', '--query', 'fintech', '--limit', '2'], { env: { ...env(), REDIS_URL: `redis://:wrong-pw@127.0.0.1:${locked.port}` } });
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(/^wcagai: Redis at redis:\/\/\*\*\*@127\.0\.0\.1:\d+\S* refused the credentials \(WRONGPASS [^)]*\); check the password in REDIS_URL, or --url to go through a server$/m);
      expect(run.stdout + run.stderr).not.toContain('wrong-pw');
    } finally {
      await locked.close();
    }
  });

  it('through the API, leaves out the websites the server refuses, queues the rest and says which were refused', async () => {
    // This server refuses private addresses; public IP literals need no DNS, and no worker scans them.
    const strict = await startTestService({ redisUrl: redis.url, settings: { ALERTS_ENABLED: 'false', ALLOW_PRIVATE_TARGETS: 'false' } });
    try {
      await strict.service.app!.listen({ port: 0, host: '127.0.0.1' });
      const base = `http://127.0.0.1:${(strict.service.app!.server.address() as AddressInfo).port}`;
      const companies = (orgs: Array<[string, string]>) => () => ({ json: { organizations: orgs.map(([name, website_url]) => ({ name, website_url })), pagination: { page: 1, total_pages: 1 } } });
      apollo.on('/api/v1/mixed_companies/search', companies([['Alive One', 'http://93.184.216.34'], ['Internal Co', 'http://10.1.2.3'], ['Alive Two', 'http://93.184.216.35'], ['Loop Ltd', 'http://127.0.0.9']]));
      const before = strict.logs.events('batch.queued').length;
      const run = await runCli(['prospect', '--query', 'x', '--url', base], { env: { ...env(), ALLOW_PRIVATE_TARGETS: 'false' } });
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toContain('https://93.184.216.34/  Alive One\nhttps://10.1.2.3/  Internal Co\nhttps://93.184.216.35/  Alive Two\nhttps://127.0.0.9/  Loop Ltd\n');
      expect(run.stdout).toMatch(/^refused https:\/\/10\.1\.2\.3\/: .*private/m);
      expect(run.stdout).toMatch(/^refused https:\/\/127\.0\.0\.9\/: .*private/m);
      const id = /queued batch (batch_[\w-]+): 2 scan\(s\)/.exec(run.stdout)?.[1];
      expect(id, run.stdout).toBeDefined();
      const batch = await strict.get(`/api/batches/${id}`);
      expect(batch.json.scans.map((s: any) => s.url).sort()).toEqual(['https://93.184.216.34/', 'https://93.184.216.35/']);
      expect(strict.logs.events('batch.queued').length - before).toBe(1);

      // Every website refused: nothing queued, but the companies Apollo was paid for are printed.
      apollo.on('/api/v1/mixed_companies/search', companies([['Internal Co', 'http://10.1.2.3']]));
      const none = await runCli(['prospect', '--query', 'x', '--url', base], { env: { ...env(), ALLOW_PRIVATE_TARGETS: 'false' } });
      expect(none.code).toBe(1);
      expect(none.stdout).toBe('https://10.1.2.3/  Internal Co\n');
      expect(none.stderr).toMatch(/no website found is allowed as a scan target: https:\/\/10\.1\.2\.3\/ \(.*private/);
    } finally {
      await strict.close();
    }
  });

  it('explains a missing Apollo key and an Apollo refusal', async () => {
    const missing = await runCli(['prospect', '--query', 'x'], { env: clean });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/Apollo is not configured: set APOLLO_API_KEY/);
    apollo.on('/api/v1/mixed_companies/search', () => ({ status: 403, json: { error: 'api/v1/mixed_companies/search is not accessible with this api_key on a free plan' } }));
    const refused = await runCli(['prospect', '--query', 'x'], { env: env() });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^wcagai: apollo: POST http:\/\/127\.0\.0\.1:\d+\/api\/v1\/mixed_companies\/search answered 403: .*free plan/);
    expect(refused.stderr).not.toContain(APOLLO_KEY);
  });
});

describe('wcagai breakers with a server URL holding credentials', () => {
  it('says the user:password@ is never sent and never prints the password', async () => {
    const withCredentials = apiBase.replace('http://', 'http://ops:url-pw-4242@');
    const run = await runCli(['breakers', 'list', '--url', withCredentials], { env: clean });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^wcagai: the wcagai server URL http:\/\/\*\*\*@127\.0\.0\.1:\d+ holds a user name or password, which is never sent/);
    expect(run.stdout + run.stderr).not.toContain('url-pw-4242');
  });
});
