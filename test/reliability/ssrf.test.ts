/**
 * Hostile input, part 2: the consolidated SSRF table. Every target is tried twice with the default
 * target policy (ALLOW_PRIVATE_TARGETS=false, no SCAN_ALLOWED_HOSTS):
 *
 * - at the server: POST /api/scans over real HTTP must answer 4xx problem+json with the refusing code;
 * - at the worker: the same URL is queued straight into Redis (as a replay or an older API could),
 *   a real worker with real Chromium takes it, and the scan must fail with the refusing code.
 *
 * Chromium reaches the network only through the engine's egress proxy, which connects to the
 * address it checked; the public test addresses are routed to a loopback canary, and so is any
 * loopback connection the proxy would let through: a target the guard let through shows up as a
 * hit. The resolver is injected (src/scanner/types.ts Resolver), as in test/scanner/engine-ssrf.test.ts:
 * `*.example.test` names answer from a table, other names from the system resolver.
 *
 * Redirects, subresources, iframes and DNS rebinding cannot be judged at submit time (the server
 * rightly accepts them); for those the engine must block the navigation or drop the request.
 */
import { Queue, QueueEvents } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { DEFAULT_SCAN_OPTIONS } from '../../src/domain/scan.js';
import { buildServer } from '../../src/http/server.js';
import { createLogger } from '../../src/observability/logger.js';
import { keysFor } from '../../src/queue/keys.js';
import { ScanProducer } from '../../src/queue/producer.js';
import { producerConnection, toRedisError, waitReady, workerConnection } from '../../src/queue/redis.js';
import { ResultStore } from '../../src/queue/store.js';
import { CompletionWaiter } from '../../src/queue/waiter.js';
import { startScanWorker, type ScanWorker } from '../../src/queue/worker.js';
import { createScanner, DEFAULT_SCANNER_CONFIG } from '../../src/scanner/engine.js';
import { defaultResolver } from '../../src/scanner/target-guard.js';
import type { Resolver, Scanner, TargetPolicy } from '../../src/scanner/types.js';
import { page } from '../support/fixture-server.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { baseEnv, LogSink, uniquePrefix, waitFor } from '../support/service.js';
import { recordResult } from './results.js';
import { problemIssues } from './support/hostile-problem.js';
import { startCanary, type Canary } from './support/hostile-canary.js';

const PUBLIC = 'public.example.test';
const OTHER = 'other.example.test';
const REFUSING = ['BLOCKED_TARGET', 'UNSUPPORTED_SCHEME', 'INVALID_URL'];
/** The addresses the public test hosts resolve to: the canary stands in for them. */
const PUBLIC_ADDRESSES = ['93.184.216.34', '93.184.216.35'];
const COMMAND = 'npx vitest run --config vitest.reliability.config.ts test/reliability/ssrf.test.ts';

/** DNS as the attacker arranges it; `rebind.example.test` answers public once per resolver, private afterwards. */
const DNS: Record<string, string[]> = {
  [PUBLIC]: ['93.184.216.34'],
  [OTHER]: ['93.184.216.35'],
  'sneaky.example.test': ['127.0.0.1'],
  'meta.example.test': ['169.254.169.254'],
  'mixed.example.test': ['93.184.216.34', '10.0.0.7'],
  'mapped.example.test': ['::ffff:127.0.0.1'],
  'v6meta.example.test': ['fd00:ec2::254'],
  '127.0.0.1.nip.example.test': ['127.0.0.1'],
};

function attackerResolver(): Resolver {
  const seen = new Map<string, number>();
  return async (host) => {
    if (host === 'rebind.example.test') {
      const n = seen.get(host) ?? 0;
      seen.set(host, n + 1);
      return n === 0 ? ['93.184.216.34'] : ['127.0.0.1'];
    }
    return DNS[host] ?? defaultResolver(host);
  };
}

const policy = (): TargetPolicy => ({ allowPrivate: false, allowedHosts: [], resolve: attackerResolver() });

interface Row {
  category: string;
  url: string;
  /** Direct: refused by both tiers. Engine: accepted at submit time by design, stopped in the browser. */
  kind: 'direct' | 'engine';
  /** For engine rows: 'blocked' (the navigation itself is refused) or 'dropped' (the page scans, its request never leaves). */
  expect?: 'blocked' | 'dropped';
  /** The canary path that must never be hit. */
  canary?: string;
}

let redis: RedisServer;
let canary: Canary;
let scanner: Scanner;
let worker: ScanWorker;
let app: FastifyInstance;
let base: string;
let conn: Redis;
let workerConn: Redis;
let queue: Queue;
let waiter: CompletionWaiter;
let events: QueueEvents;
let eventsConn: ReturnType<typeof workerConnection>;
let producer: ScanProducer;
let rows: Row[];

function buildRows(p: number): Row[] {
  const c = (id: string) => `/canary/${id}`;
  const direct = (category: string, url: string, canaryPath?: string): Row => ({ category, url, kind: 'direct', ...(canaryPath ? { canary: canaryPath } : {}) });
  const pub = (path: string) => `http://${PUBLIC}:${p}${path}`;
  return [
    direct('loopback', `http://127.0.0.1:${p}${c('plain')}`, c('plain')),
    direct('IPv4 decimal', `http://2130706433:${p}${c('decimal')}`, c('decimal')),
    direct('IPv4 octal', `http://0177.0.0.1:${p}${c('octal')}`, c('octal')),
    direct('IPv4 octal integer', `http://017700000001:${p}${c('octal-int')}`, c('octal-int')),
    direct('IPv4 hex', `http://0x7f.0x0.0x0.0x1:${p}${c('hex')}`, c('hex')),
    direct('IPv4 hex integer', `http://0x7f000001:${p}${c('hex-int')}`, c('hex-int')),
    direct('IPv4 short form', `http://127.1:${p}${c('short')}`, c('short')),
    direct('IPv4 percent-encoded', `http://%31%32%37.0.0.1:${p}${c('pct')}`, c('pct')),
    direct('IPv4 full-width digits', `http://\uff11\uff12\uff17.\uff10.\uff10.\uff11:${p}${c('fullwidth')}`, c('fullwidth')),
    direct('0.0.0.0 (reaches loopback on Linux)', `http://0.0.0.0:${p}${c('zero')}`, c('zero')),
    direct('0 shorthand', `http://0:${p}${c('zero-short')}`, c('zero-short')),
    direct('IPv6 loopback', `http://[::1]:${p}${c('v6')}`, c('v6')),
    direct('IPv6 loopback, long form', `http://[0:0:0:0:0:0:0:1]:${p}${c('v6-long')}`, c('v6-long')),
    direct('IPv4-mapped IPv6', `http://[::ffff:127.0.0.1]:${p}${c('mapped')}`, c('mapped')),
    direct('IPv4-mapped IPv6, hex', `http://[::ffff:7f00:1]:${p}${c('mapped-hex')}`, c('mapped-hex')),
    direct('IPv4-compatible IPv6', `http://[::127.0.0.1]:${p}${c('compat')}`, c('compat')),
    direct('NAT64 of loopback', `http://[64:ff9b::127.0.0.1]:${p}${c('nat64')}`, c('nat64')),
    direct('6to4 of a private address', `http://[2002:a00:1::]:${p}${c('6to4')}`, c('6to4')),
    direct('AWS metadata', `http://169.254.169.254${c('aws')}`, c('aws')),
    direct('AWS ECS credentials', `http://169.254.170.2${c('ecs')}`, c('ecs')),
    direct('AWS IPv6 metadata', `http://[fd00:ec2::254]${c('aws-v6')}`, c('aws-v6')),
    direct('IPv4-mapped metadata', `http://[::ffff:169.254.169.254]${c('aws-mapped')}`, c('aws-mapped')),
    direct('GCP metadata name', `http://metadata.google.internal${c('gcp')}`, c('gcp')),
    direct('GCP metadata short name', `http://metadata${c('gcp-short')}`, c('gcp-short')),
    direct('Alibaba metadata (CGNAT range)', `http://100.100.100.200${c('alibaba')}`, c('alibaba')),
    direct('IPv6 link-local', `http://[fe80::1]:${p}${c('link-local')}`, c('link-local')),
    direct('private 10/8', `http://10.0.0.1${c('rfc1918-10')}`, c('rfc1918-10')),
    direct('private 172.16/12', `http://172.16.0.1${c('rfc1918-172')}`, c('rfc1918-172')),
    direct('private 192.168/16', `http://192.168.0.1${c('rfc1918-192')}`, c('rfc1918-192')),
    direct('localhost', `http://localhost:${p}${c('localhost')}`, c('localhost')),
    direct('localhost, upper case with trailing dot', `http://LOCALHOST.:${p}${c('localhost-dot')}`, c('localhost-dot')),
    direct('*.localhost', `http://app.localhost:${p}${c('sub-localhost')}`, c('sub-localhost')),
    direct('name resolving to loopback (attacker DNS)', `http://sneaky.example.test:${p}${c('sneaky')}`, c('sneaky')),
    direct('name resolving to loopback (nip.io style)', `http://127.0.0.1.nip.example.test:${p}${c('nip')}`, c('nip')),
    direct('name resolving to metadata', `http://meta.example.test${c('meta-name')}`, c('meta-name')),
    direct('name resolving to IPv6 metadata', `http://v6meta.example.test${c('v6meta-name')}`, c('v6meta-name')),
    direct('name resolving to IPv4-mapped loopback', `http://mapped.example.test:${p}${c('mapped-name')}`, c('mapped-name')),
    direct('name with one private answer among public ones', `http://mixed.example.test:${p}${c('mixed')}`, c('mixed')),
    direct('machine name from /etc/hosts (system resolver)', `http://vm:${p}${c('hostname')}`, c('hostname')),
    direct('userinfo: public name before @', `http://example.com@127.0.0.1:${p}${c('userinfo')}`, c('userinfo')),
    direct('userinfo: user and password', `http://user:pass@${PUBLIC}:${p}${c('userinfo-pass')}`, c('userinfo-pass')),
    direct('userinfo: empty', `http://@127.0.0.1:${p}${c('userinfo-empty')}`, c('userinfo-empty')),
    direct('file:', 'file:///etc/passwd'),
    direct('data:', 'data:text/html,<h1>x</h1>'),
    direct('javascript:', 'javascript:fetch("http://127.0.0.1/")'),
    direct('chrome:', 'chrome://settings'),
    direct('view-source:', `view-source:http://127.0.0.1:${p}${c('view-source')}`, c('view-source')),
    { category: 'DNS rebinding (public, then private)', url: `http://rebind.example.test:${p}${c('rebind')}`, kind: 'engine', expect: 'blocked', canary: c('rebind') },
    { category: 'redirect to loopback', url: pub('/redirect/loopback'), kind: 'engine', expect: 'blocked', canary: c('redirect-loopback') },
    { category: 'redirect to metadata', url: pub('/redirect/metadata'), kind: 'engine', expect: 'blocked', canary: c('redirect-metadata') },
    { category: 'redirect to a name resolving to loopback', url: pub('/redirect/name'), kind: 'engine', expect: 'blocked', canary: c('redirect-name') },
    { category: 'redirect chain: public, public, then IPv6 loopback', url: pub('/redirect/chain'), kind: 'engine', expect: 'blocked', canary: c('redirect-chain') },
    { category: 'iframe to loopback inside an allowed page', url: pub('/embeds?row=iframe'), kind: 'engine', expect: 'dropped', canary: c('iframe') },
    { category: 'iframe to a name resolving to loopback', url: pub('/embeds?row=iframe-name'), kind: 'engine', expect: 'dropped', canary: c('iframe-name') },
    { category: 'image from metadata', url: pub('/embeds?row=img'), kind: 'engine', expect: 'dropped', canary: c('img') },
    { category: 'script from IPv6 loopback', url: pub('/embeds?row=script'), kind: 'engine', expect: 'dropped', canary: c('script') },
    { category: 'stylesheet from decimal loopback', url: pub('/embeds?row=css'), kind: 'engine', expect: 'dropped', canary: c('css') },
    { category: 'fetch() to a private address', url: pub('/embeds?row=fetch'), kind: 'engine', expect: 'dropped', canary: c('fetch') },
    { category: 'image redirected to loopback', url: pub('/embeds?row=img-redirect'), kind: 'engine', expect: 'dropped', canary: c('img-redirected') },
  ];
}

beforeAll(async () => {
  redis = await startRedisServer();
  canary = await startCanary([PUBLIC, OTHER]);
  const p = canary.port;
  rows = buildRows(p);
  const c = (id: string) => `/canary/${id}`;
  canary.page('/redirect/loopback', '', { location: `http://127.0.0.1:${p}${c('redirect-loopback')}` }, 302);
  canary.page('/redirect/metadata', '', { location: `http://169.254.169.254${c('redirect-metadata')}` }, 302);
  canary.page('/redirect/name', '', { location: `http://sneaky.example.test:${p}${c('redirect-name')}` }, 302);
  canary.page('/redirect/chain', '', { location: `http://${OTHER}:${p}/redirect/chain-2` }, 301);
  canary.page('/redirect/chain-2', '', { location: `http://[::1]:${p}${c('redirect-chain')}` }, 307);
  canary.page('/redirect/img', '', { location: `http://127.0.0.1:${p}${c('img-redirected')}` }, 302);
  // One page holds every embedded attack (each row scans it once; the query keeps the cache apart).
  canary.page(
    '/embeds',
    page(
      `<h1>Allowed page with private embeds</h1>
      <iframe title="loopback" src="http://127.0.0.1:${p}${c('iframe')}"></iframe>
      <iframe title="name" src="http://sneaky.example.test:${p}${c('iframe-name')}"></iframe>
      <img src="http://169.254.169.254${c('img')}" alt="metadata">
      <img src="http://${PUBLIC}:${p}/redirect/img" alt="redirected">
      <script src="http://[::1]:${p}${c('script')}"></script>
      <script>fetch('http://10.0.0.1${c('fetch')}').catch(() => {});</script>`,
      `<link rel="stylesheet" href="http://2130706433:${p}${c('css')}">`,
    ),
  );

  const config = loadConfig(baseEnv(), {
    REDIS_URL: redis.url,
    QUEUE_PREFIX: uniquePrefix('ssrf'),
    // Everything else at its default (ALLOW_PRIVATE_TARGETS=false, SCAN_ALLOWED_HOSTS empty); one
    // attempt so a scan that is not refused fails fast instead of retrying, and a loaded shared
    // machine does not trip the event-loop guard.
    SCAN_ATTEMPTS: '1',
    MAX_EVENT_LOOP_DELAY: '30s',
    LOG_LEVEL: 'warn',
    LOG_PRETTY: 'false',
  });
  expect(config.ALLOW_PRIVATE_TARGETS).toBe(false);
  expect(config.SCAN_ALLOWED_HOSTS).toEqual([]);
  const logger = createLogger({ level: 'warn', destination: new LogSink() });
  const keys = keysFor(config.QUEUE_PREFIX);
  conn = producerConnection(config.REDIS_URL);
  await waitReady(conn);
  queue = new Queue(keys.queueName, { connection: conn, prefix: keys.bullPrefix });
  const store = new ResultStore(conn, keys, config.RESULT_TTL, config.CACHE_TTL);
  producer = new ScanProducer(queue, conn, keys, store, { attempts: 1, backoffMs: 100, maxQueueDepth: 1_000, inflightTtlMs: 60_000 });
  // The waiter listens on a stream it does not own (as serve gives it the DLQ capture's).
  eventsConn = workerConnection(config.REDIS_URL).on('error', () => undefined);
  events = new QueueEvents(keys.queueName, { connection: eventsConn, prefix: keys.bullPrefix });
  waiter = new CompletionWaiter(events);
  await waiter.ready();
  app = await buildServer({ config, logger, redis: conn, keys, producer, store, waiter, policy: policy(), toRedisError });
  base = await app.listen({ port: 0, host: '127.0.0.1' });

  scanner = await createScanner({
    ...DEFAULT_SCANNER_CONFIG,
    concurrency: 1,
    navigationTimeoutMs: 8_000,
    scanTimeoutMs: 15_000,
    settleMaxMs: 1_000,
    policy: policy(),
    // The engine's egress proxy is the browser's only way out; the public test addresses are
    // routed to the canary, and so is anything else that reaches loopback (a leak it records).
    egressRoute: (address) => (PUBLIC_ADDRESSES.includes(address) ? '127.0.0.1' : address),
  });
  workerConn = workerConnection(config.REDIS_URL);
  worker = startScanWorker({ connection: workerConn, keys, scanner, store: new ResultStore(workerConn, keys, config.RESULT_TTL, config.CACHE_TTL), logger, concurrency: 1, scanTimeoutMs: 15_000 });
}, 120_000);

afterAll(async () => {
  await worker?.close(5_000);
  await scanner?.close();
  await app?.close();
  await waiter?.close();
  await events?.close();
  eventsConn?.disconnect();
  await queue?.close();
  conn?.disconnect();
  workerConn?.disconnect();
  await canary?.close();
  await redis?.close();
});

async function submit(url: string): Promise<{ status: number; headers: Record<string, string>; body: string; json: Record<string, any> | null }> {
  const res = await fetch(`${base}/api/scans`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ url }) });
  const body = await res.text();
  let json: Record<string, any> | null = null;
  try {
    json = JSON.parse(body) as Record<string, any>;
  } catch {
    json = null;
  }
  const headers: Record<string, string> = {};
  res.headers.forEach((value, name) => (headers[name] = value));
  return { status: res.status, headers, body, json };
}

async function finished(id: string): Promise<Record<string, any>> {
  return waitFor(
    async () => {
      const view = await producer.view(id);
      return view && (view.status === 'completed' || view.status === 'failed') ? (view as unknown as Record<string, any>) : undefined;
    },
    { timeoutMs: 40_000, intervalMs: 50, what: `scan ${id} to finish` },
  );
}

describe('SSRF: ≥30 targets refused by the server and by the worker (default settings)', () => {
  it('refuses every target at the tier that can judge it, and the canary is never reached', async () => {
    const table: Array<Record<string, unknown>> = [];
    const failures: string[] = [];
    let refusedByServer = 0;
    let refusedByWorker = 0;
    let engineStopped = 0;

    for (const row of rows) {
      const hitsBefore = row.canary ? canary.hits.filter((h) => h.path === row.canary).length : 0;
      const res = await submit(row.url);
      const record: Record<string, unknown> = { category: row.category, url: row.url, serverStatus: res.status, serverCode: res.json?.code };

      let jobId: string | undefined;
      if (row.kind === 'direct') {
        const issues = problemIssues(res.status, res.headers as never, res.body);
        if (res.status >= 400 && res.status < 500 && REFUSING.includes(String(res.json?.code)) && issues.length === 0) refusedByServer++;
        else failures.push(`${row.category}: the server answered ${res.status} ${res.body.slice(0, 200)} ${issues.join('; ')}`);
        // Past the API: straight into the queue, as a DLQ replay or an older API could put it.
        try {
          jobId = (await producer.submit(row.url, DEFAULT_SCAN_OPTIONS, { priority: 'normal' })).id;
        } catch (err) {
          failures.push(`${row.category}: could not be queued: ${(err as Error).message}`);
        }
      } else if (res.status === 202) {
        jobId = String(res.json?.id);
      } else {
        failures.push(`${row.category}: the server should accept it (only the browser can judge it), answered ${res.status} ${res.body.slice(0, 200)}`);
      }

      if (jobId) {
        const view = await finished(jobId);
        const code = view.error?.code ?? view.result?.error?.code;
        record.workerStatus = view.status;
        record.workerCode = code ?? null;
        if (row.kind === 'direct' || row.expect === 'blocked') {
          if (view.status === 'failed' && REFUSING.includes(String(code))) {
            if (row.kind === 'direct') refusedByWorker++;
            else engineStopped++;
          } else failures.push(`${row.category}: the worker's scan ended ${view.status} ${code ?? ''} (${String(view.error?.message ?? '').slice(0, 300)}), expected a refusal`);
        } else if (view.status === 'completed') engineStopped++;
        else failures.push(`${row.category}: the allowed page should still scan, ended ${view.status} ${code ?? ''}`);
      }
      const hits = row.canary ? canary.hits.filter((h) => h.path === row.canary).length - hitsBefore : 0;
      record.canaryHits = hits;
      if (hits > 0) failures.push(`${row.category}: the canary was reached ${hits} time(s)`);
      table.push(record);
    }

    const direct = rows.filter((r) => r.kind === 'direct').length;
    const engine = rows.length - direct;
    const leaks = canary.leaks();
    const figures = {
      targets: rows.length,
      directTargets: direct,
      refusedByServer,
      refusedByWorker,
      engineOnlyTargets: engine,
      engineOnlyStopped: engineStopped,
      canaryHits: leaks.length,
      canaryRequestsTotal: canary.hits.length,
      categories: rows.map((r) => r.category),
      command: COMMAND,
    };
    recordResult('ssrf', figures);
    console.log(table.map((r) => `${String(r.category).padEnd(52)} server ${r.serverStatus} ${r.serverCode ?? ''} | worker ${r.workerStatus ?? '-'} ${r.workerCode ?? ''} | hits ${r.canaryHits}`).join('\n'));

    expect(failures, failures.join('\n')).toEqual([]);
    expect(leaks, JSON.stringify(leaks)).toEqual([]);
    expect(direct).toBeGreaterThanOrEqual(30);
    expect(refusedByServer).toBe(direct);
    expect(refusedByWorker).toBe(direct);
    expect(engineStopped).toBe(engine);
    // The egress proxy really carries the browser's traffic: the allowed pages reached the canary through it.
    expect(canary.hits.some((h) => h.path === '/embeds')).toBe(true);
  });
});
