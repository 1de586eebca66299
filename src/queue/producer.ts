import { Job, Queue } from 'bullmq';
import type { Priority } from '../domain/request.js';
import type { Config } from '../config/schema.js';
import type { QueueFigures } from '../domain/snapshot.js';
import type { ScanOptions } from '../domain/scan.js';
import { WcagaiError } from '../errors/catalogue.js';
import { cacheKeyOf, JOB_SCHEMA_VERSION, newScanId, PRIORITY, type ScanJobData, type ScanStatus, type ScanView } from './job.js';
import type { Keys } from './keys.js';
import { classifyFailure } from './processor.js';
import { toRedisError, type RedisClient } from './redis.js';
import { ResultStore } from './store.js';

/**
 * One round trip decides a submission of one or more requests: for each, a fresh cached result,
 * a job already in flight for the same request, or a new job; then, for the new ones together,
 * admission control (a full queue refuses them all and marks nothing).
 *
 * Jobs are added by BullMQ after this script returns, so the queue lists alone would let
 * concurrent submissions all see the same free room. Each admitted job therefore holds a
 * reservation in KEYS[5] (score: its expiry) until the producer has added it, and reservations
 * count towards the depth until then, or until they expire (a producer that died in between).
 * Between the add and the release a job counts twice: admission errs on the safe side by at most
 * the submissions in flight, and costs one ZCARD instead of a look-up per reservation.
 *
 * A scan waiting for its retry's backoff (BullMQ's delayed set) counts as waiting: the API shows it
 * as queued, and it comes back to the wait list by itself, so leaving it out let the queue grow past
 * MAX_QUEUE_DEPTH once the retries of a failing site came back (with new scans admitted meanwhile).
 *
 * Requests decided together are either one batch (all or nothing: a full queue refuses every new
 * one) or independent submissions gathered from one turn of the event loop ("each": admitted in
 * order while there is room, the rest answered 'full' with the depth).
 *
 * An in-flight marker lives as long as its job may still run, however long the job waits: its TTL
 * only lets go of a marker whose job is gone (failed without a final record, removed, or never
 * added by a producer that died). Before deciding, once per third of that TTL (fleet-wide: the
 * renewal key is shared), the script renews the marker of every job still queued, delayed for a
 * retry or running, and sets it again where it lapsed (nobody submitted for longer than a marker
 * lives); a marker naming another job, or a job whose final record is stored, is left alone. The
 * renewal reads each such job's hash once, one script call, about 5 ms of Redis time per 1,000
 * jobs (measured on a shared 2-core machine: 4 to 8 ms for 1,000, 60 to 90 ms for 10,000; an
 * ADMIT without it, 0.25 ms).
 *
 * KEYS: wait, paused, prioritized, active, reservations, result key prefix, job key prefix,
 * delayed, renewal key, in-flight key prefix, then a cache key and an in-flight key per request.
 * ARGV: in-flight TTL, max depth, reservation TTL, skip lookups ("1" for fresh submissions), admit
 * each ("1") or all or nothing ("0"), then one new id per request. Returns {'full', depth, new
 * requests} or
 * {'ok', outcome1, id1, outcome2, id2, ...}.
 */
const ADMIT_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now)
local ttl = tonumber(ARGV[1])
if redis.call('SET', KEYS[9], now, 'PX', math.max(1, math.floor(ttl / 3)), 'NX') then
  local function renew(id)
    if redis.call('EXISTS', KEYS[6] .. id) == 1 then return end
    local raw = redis.call('HGET', KEYS[7] .. id, 'data')
    if not raw then return end
    local ok, data = pcall(cjson.decode, raw)
    if not ok or type(data) ~= 'table' or type(data.cacheKey) ~= 'string' then return end
    local marker = KEYS[10] .. data.cacheKey
    local holder = redis.call('GET', marker)
    if holder == id then redis.call('PEXPIRE', marker, ttl)
    elseif not holder then redis.call('SET', marker, id, 'PX', ttl) end
  end
  for _, list in ipairs({KEYS[1], KEYS[2], KEYS[4]}) do
    for _, id in ipairs(redis.call('LRANGE', list, 0, -1)) do renew(id) end
  end
  for _, set in ipairs({KEYS[3], KEYS[8]}) do
    for _, id in ipairs(redis.call('ZRANGE', set, 0, -1)) do renew(id) end
  end
end
local fresh = ARGV[4] == '1'
local each = ARGV[5] == '1'
local n = #ARGV - 5
local out = {'ok'}
local news = {}
local seen = {}
for i = 1, n do
  local cacheKey, inflightKey = KEYS[9 + 2 * i], KEYS[10 + 2 * i]
  local outcome, value = nil, nil
  if seen[inflightKey] then
    outcome, value = 'inflight', seen[inflightKey]
  elseif not fresh then
    local cached = redis.call('GET', cacheKey)
    if cached and redis.call('EXISTS', KEYS[6] .. cached) == 1 then
      outcome, value = 'cached', cached
    else
      local inflight = redis.call('GET', inflightKey)
      if inflight then outcome, value = 'inflight', inflight end
    end
  end
  if not outcome then
    outcome, value = 'new', ARGV[5 + i]
    seen[inflightKey] = value
    news[#news + 1] = i
  end
  out[#out + 1] = outcome
  out[#out + 1] = value
end
if #news > 0 then
  local reserved = redis.call('ZCARD', KEYS[5])
  local depth = redis.call('LLEN', KEYS[1]) + redis.call('LLEN', KEYS[2]) + redis.call('ZCARD', KEYS[3]) + redis.call('LLEN', KEYS[4]) + redis.call('ZCARD', KEYS[8]) + reserved
  local max = tonumber(ARGV[2])
  if not each and depth + #news > max then return {'full', tostring(depth), tostring(#news)} end
  local expires = now + tonumber(ARGV[3])
  for _, i in ipairs(news) do
    if depth < max then
      redis.call('SET', KEYS[10 + 2 * i], ARGV[5 + i], 'PX', ARGV[1])
      redis.call('ZADD', KEYS[5], expires, ARGV[5 + i])
      depth = depth + 1
    else
      out[2 * i] = 'full'
      out[2 * i + 1] = tostring(depth)
    end
  end
end
return out
`;

/** Deletes an in-flight marker only while it still names the job it named when judged stale. */
const CLEAR_MARKER_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/** How long an admitted job may take to be added before its reservation stops counting. */
const RESERVATION_TTL_MS = 30_000;

/** How long a request joining a job that is being added waits for the add (longer than the API producer's 2 s command timeout). */
const ADD_WAIT_MS = 3_000;

export interface SubmitContext {
  priority: Priority;
  requestId?: string;
  /** The request's W3C trace id (traceparent), restored in the worker's log context. */
  traceId?: string;
  batchId?: string;
  dlqId?: string;
  /** Skip cache and dedup (replays of failed scans must run again). */
  fresh?: boolean;
  /** The job's id, chosen by the caller (a fresh submission only: a DLQ replay records it before queueing). */
  id?: string;
}

export type SubmitOutcome = 'new' | 'inflight' | 'cached';
type Decision = { id: string; outcome: SubmitOutcome | 'full' };

/** A submission waiting for the next decision of its event-loop turn. */
interface Pending {
  url: string;
  options: ScanOptions;
  cacheKey: string;
  id: string;
  ctx: SubmitContext;
  resolve(value: { id: string; outcome: SubmitOutcome }): void;
  reject(err: unknown): void;
}

/**
 * Submissions decided and added together at most (an ADMIT call and one addBulk each); a full
 * group goes at once, without waiting for the end of the event-loop turn. Under closed-loop load
 * every connection's request lands in one turn: one group of all of them left this process idle
 * (13 % of the time at 100 connections) while Redis ran its ADMIT and addBulk, and Redis idle
 * while this process parsed the next turn's requests. Groups of 32 overlap the two: 8 % more
 * submissions a second, measured side by side (3,841 against 3,557 req/s, four rounds each).
 */
const MAX_GATHERED = 32;

export interface ProducerSettings {
  attempts: number;
  backoffMs: number;
  maxQueueDepth: number;
  inflightTtlMs: number;
}

/** Queue figures for health, the API and the dashboard (the snapshot's QueueFigures, with a typed state). */
export interface Capacity extends QueueFigures {
  state: 'healthy' | 'warning' | 'critical';
}

type Admit = (keys: string[], args: Array<string | number>) => Promise<string[]>;

interface Request {
  cacheKey: string;
  id: string;
}

/**
 * How long an in-flight marker lives without being renewed: the ADMIT script renews the marker of
 * every job still queued, delayed or running once a third of this has passed.
 */
export const INFLIGHT_TTL_MS = 3_600_000;

/** The result store and the scan producer of a process, with the queue settings of its configuration. */
export function producerOf(queue: Queue, redis: RedisClient, keys: Keys, config: Pick<Config, 'SCAN_ATTEMPTS' | 'SCAN_BACKOFF' | 'MAX_QUEUE_DEPTH' | 'RESULT_TTL' | 'CACHE_TTL'>): { store: ResultStore; producer: ScanProducer } {
  const store = new ResultStore(redis, keys, config.RESULT_TTL, config.CACHE_TTL);
  const producer = new ScanProducer(queue, redis, keys, store, { attempts: config.SCAN_ATTEMPTS, backoffMs: config.SCAN_BACKOFF, maxQueueDepth: config.MAX_QUEUE_DEPTH, inflightTtlMs: INFLIGHT_TTL_MS });
  return { store, producer };
}

/** The BullMQ options of a scan job: priority, retries with jittered exponential backoff, retention. */
export function scanJobOptions(id: string, priority: Priority, settings: Pick<ProducerSettings, 'attempts' | 'backoffMs'>) {
  return {
    jobId: id,
    priority: PRIORITY[priority],
    attempts: settings.attempts,
    backoff: { type: 'exponential', delay: settings.backoffMs, jitter: 0.5 },
    removeOnComplete: { age: 3_600, count: 10_000 },
    removeOnFail: { age: 7 * 86_400, count: 100_000 },
  };
}

/** Adds scans to the BullMQ queue with cache, in-flight dedup and admission control. */
export class ScanProducer {
  private readonly admit: Admit;
  private toRelease: string[] = [];
  private releasing: Promise<void> | null = null;
  private gathered: Pending[] = [];
  /** Adds this producer has in flight, by job id: a twin of one waits for it here instead of polling Redis. */
  private readonly adding = new Map<string, Promise<unknown>>();

  constructor(
    readonly queue: Queue,
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly store: ResultStore,
    private readonly settings: ProducerSettings,
  ) {
    // The number of keys varies with the requests: it is passed as the first argument.
    redis.defineCommand('wcagaiAdmit', { lua: ADMIT_SCRIPT });
    redis.defineCommand('wcagaiClearMarker', { numberOfKeys: 1, lua: CLEAR_MARKER_SCRIPT });
    const r = redis as unknown as { wcagaiAdmit(...a: Array<string | number>): Promise<string[]>; wcagaiClearMarker(key: string, id: string): Promise<number> };
    this.admit = (k, a) => r.wcagaiAdmit(k.length, ...k, ...a);
    this.clearMarker = (cacheKey, id) => r.wcagaiClearMarker(this.keys.inflight(cacheKey), id).catch(() => 0);
  }

  /*
   * addFailed: when adding admitted jobs fails, their in-flight markers are left in place. The add
   * may have reached Redis although its answer did not (a command timeout): a marker cleared then
   * would let the client's retry queue the page a second time. Left in place, the retry finds the
   * marker and asks whether its job exists: it joins the job that did get in, or clears the marker
   * of one that did not and queues anew.
   */

  /**
   * Clears the in-flight marker of `cacheKey` if it still names `id`: a marker another submission
   * has set since (for a new job) is left alone, so two submissions clearing one stale marker make one job.
   */
  private readonly clearMarker: (cacheKey: string, id: string) => Promise<unknown>;

  /**
   * Decides `requests` at once: each is cached, in flight or new; the new ones are admitted
   * together (reserved until `release`) or refused together with QUEUE_FULL.
   */
  private decide(requests: readonly Request[], fresh: boolean): Promise<Array<{ id: string; outcome: SubmitOutcome }>>;
  private decide(requests: readonly Request[], fresh: boolean, each: true): Promise<Decision[]>;
  private async decide(requests: readonly Request[], fresh: boolean, each = false): Promise<Decision[]> {
    const k = this.keys;
    const keys = [k.wait, k.paused, k.prioritized, k.active, k.admitting, k.result(''), k.job(''), k.delayed, k.inflightRenewed, k.inflight('')];
    for (const r of requests) keys.push(k.cache(r.cacheKey), k.inflight(r.cacheKey));
    const args = [this.settings.inflightTtlMs, this.settings.maxQueueDepth, RESERVATION_TTL_MS, fresh ? '1' : '0', each ? '1' : '0', ...requests.map((r) => r.id)];
    const reply = await this.redisCall(() => this.admit(keys, args));
    if (reply[0] === 'full') {
      // More new scans than the queue may ever hold: waiting does not help, so it is no 503 to retry.
      const news = Number(reply[2]);
      if (news > this.settings.maxQueueDepth) throw this.neverFits(news);
      throw this.queueFull(Number(reply[1]));
    }
    return requests.map((_, i) => ({ outcome: reply[1 + 2 * i] as Decision['outcome'], id: reply[2 + 2 * i]! }));
  }

  /**
   * Drops the reservations of admitted jobs once they are in the queue (or failed to get there).
   * Releases asked for in the same turn of the event loop go out as one ZREM.
   */
  private release(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return Promise.resolve();
    this.toRelease.push(...ids);
    this.releasing ??= new Promise<void>((resolve) => setImmediate(resolve)).then(async () => {
      const batch = this.toRelease.splice(0);
      this.releasing = null;
      for (let i = 0; i < batch.length; i += 1_000) await this.redis.zrem(this.keys.admitting, ...batch.slice(i, i + 1_000)).catch(() => 0);
    });
    return this.releasing;
  }

  /**
   * Marks `ids` as being added by this producer until the function returned is called: a twin
   * decided meanwhile in this process waits for that (see liveJob). Waiting on these cannot go
   * round in a circle: a submission waits only for ids admitted before its own decision.
   */
  private hold(ids: readonly string[]): () => void {
    let done!: () => void;
    const settled = new Promise<void>((resolve) => (done = resolve));
    for (const id of ids) this.adding.set(id, settled);
    return () => {
      for (const id of ids) if (this.adding.get(id) === settled) this.adding.delete(id);
      done();
    };
  }

  /** Runs an add of `ids`, known to liveJob until it settles. */
  private async tracked(ids: readonly string[], add: () => Promise<unknown>): Promise<void> {
    const release = this.hold(ids);
    try {
      await add();
    } finally {
      release();
    }
  }

  private jobOptions(id: string, ctx: SubmitContext) {
    return scanJobOptions(id, ctx.priority, this.settings);
  }

  private data(url: string, options: ScanOptions, cacheKey: string, ctx: SubmitContext): ScanJobData {
    return {
      v: JOB_SCHEMA_VERSION,
      url,
      options,
      cacheKey,
      ...(ctx.requestId ? { requestId: ctx.requestId } : {}),
      ...(ctx.traceId ? { traceId: ctx.traceId } : {}),
      ...(ctx.batchId ? { batchId: ctx.batchId } : {}),
      ...(ctx.dlqId ? { dlqId: ctx.dlqId } : {}),
    };
  }

  /**
   * Queues one scan (URL already validated), or answers with the cached or in-flight one.
   * Submissions made in the same turn of the event loop (the API under load) are decided by one
   * ADMIT call and added by one addBulk, each still admitted, deduplicated and answered on its own.
   */
  submit(url: string, options: ScanOptions, ctx: SubmitContext): Promise<{ id: string; outcome: SubmitOutcome }> {
    // Replays skip cache and dedup: they go alone, as before.
    if (ctx.fresh) return this.submitOne(url, options, ctx, undefined, ctx.id);
    return new Promise((resolve, reject) => {
      if (this.gathered.length === 0) setImmediate(() => void this.flushGathered());
      this.gathered.push({ url, options, cacheKey: cacheKeyOf(url, options), id: newScanId(), ctx, resolve, reject });
      if (this.gathered.length >= MAX_GATHERED) void this.flushGathered();
    });
  }

  private async flushGathered(): Promise<void> {
    // At most MAX_GATHERED: a group that reached it went at once.
    const batch = this.gathered.splice(0);
    if (batch.length === 0) return;
    // Whatever goes wrong, every submission gets an answer (a settled promise ignores a second one).
    await this.submitGathered(batch).catch((err: unknown) => batch.forEach((p) => p.reject(toRedisError(err))));
  }

  private async submitGathered(batch: readonly Pending[]): Promise<void> {
    if (batch.length === 1) {
      const [p] = batch;
      return this.submitOne(p!.url, p!.options, p!.ctx, p!.cacheKey, p!.id).then(p!.resolve, p!.reject);
    }
    const decisions = await this.decide(batch, false, true);
    const news: Pending[] = [];
    const newIds = new Map<string, Pending>();
    for (const [i, d] of decisions.entries()) if (d.outcome === 'new') (news.push(batch[i]!), newIds.set(d.id, batch[i]!));
    // The id a refused request was given, with the depth that refused it: a twin of it in the batch is refused too.
    const refused = new Map<string, number>();
    decisions.forEach((d, i) => d.outcome === 'full' && refused.set(batch[i]!.id, Number(d.id)));
    // Requests joining a job of this very batch: answered with it once it is added (or not).
    const joiners: Array<{ p: Pending; id: string }> = [];
    // Requests that found an older in-flight marker, by request: checked once the batch's jobs are in.
    const stale = new Map<string, Array<{ p: Pending; id: string }>>();
    for (const [i, d] of decisions.entries()) {
      const p = batch[i]!;
      if (d.outcome === 'new') continue;
      if (d.outcome === 'cached') p.resolve({ id: d.id, outcome: 'cached' });
      else if (d.outcome === 'full') p.reject(this.queueFull(Number(d.id)));
      else if (newIds.has(d.id)) joiners.push({ p, id: d.id });
      else if (refused.has(d.id)) p.reject(this.queueFull(refused.get(d.id)!));
      else stale.set(p.cacheKey, [...(stale.get(p.cacheKey) ?? []), { p, id: d.id }]);
    }
    if (news.length) {
      try {
        await this.tracked(
          news.map((p) => p.id),
          () => this.queue.addBulk(news.map((p) => ({ name: 'scan', data: this.data(p.url, p.options, p.cacheKey, p.ctx), opts: this.jobOptions(p.id, p.ctx) }))),
        );
        for (const p of news) p.resolve({ id: p.id, outcome: 'new' });
        for (const j of joiners) j.p.resolve({ id: j.id, outcome: 'inflight' });
        const higher = joiners.filter((j) => PRIORITY[j.p.ctx.priority] < PRIORITY[newIds.get(j.id)!.ctx.priority]);
        await Promise.all(higher.map((j) => this.raisePriority(j.id, j.p.ctx.priority)));
      } catch (err) {
        // The markers stay (see addFailed).
        const error = toRedisError(err);
        for (const p of [...news, ...joiners.map((j) => j.p)]) p.reject(error);
      } finally {
        await this.release(news.map((p) => p.id));
      }
    }
    // After the release: the batch's jobs no longer count twice when these are decided again. The
    // first request of each goes; its twins in the batch join whatever it gets.
    await Promise.all(
      [...stale.values()].map(async ([first, ...twins]) => {
        try {
          const answer = await this.joinOrResubmit(first!.p, first!.id);
          first!.p.resolve(answer);
          for (const t of twins) t.p.resolve({ id: answer.id, outcome: 'inflight' });
          await Promise.all(twins.filter((t) => PRIORITY[t.p.ctx.priority] < PRIORITY[first!.p.ctx.priority]).map((t) => this.raisePriority(answer.id, t.p.ctx.priority)));
        } catch (err) {
          for (const t of [first!, ...twins]) t.p.reject(err);
        }
      }),
    );
  }

  /**
   * Joins the job of an in-flight marker when it is live; else clears the marker and submits once
   * more, joining whatever marker is there then (as the single path's second attempt does).
   */
  private async joinOrResubmit(p: Pending, inflightId: string): Promise<{ id: string; outcome: SubmitOutcome }> {
    const job = await this.liveJob(inflightId);
    if (job) {
      await this.raisePriority(inflightId, p.ctx.priority, job);
      return { id: inflightId, outcome: 'inflight' };
    }
    await this.clearMarker(p.cacheKey, inflightId);
    return this.submitOne(p.url, p.options, p.ctx, p.cacheKey, p.id, 1);
  }

  private async submitOne(url: string, options: ScanOptions, ctx: SubmitContext, cacheKey = cacheKeyOf(url, options), id = newScanId(), firstAttempt = 0): Promise<{ id: string; outcome: SubmitOutcome }> {
    for (let attempt = firstAttempt; ; attempt++) {
      const [decision] = await this.decide([{ cacheKey, id }], ctx.fresh === true);
      const { outcome, id: value } = decision!;
      if (outcome === 'cached') return { id: value, outcome: 'cached' };
      if (outcome === 'inflight') {
        // The marker outlives a job that vanished or failed without a final record: clear it, try once more.
        const job = attempt === 0 ? await this.liveJob(value) : undefined;
        if (job === null) {
          await this.clearMarker(cacheKey, value);
          continue;
        }
        await this.raisePriority(value, ctx.priority, job);
        return { id: value, outcome: 'inflight' };
      }
      try {
        await this.tracked([id], () => this.queue.add('scan', this.data(url, options, cacheKey, ctx), this.jobOptions(id, ctx)));
      } catch (err) {
        // The marker stays (see addFailed).
        throw toRedisError(err);
      } finally {
        await this.release([id]);
      }
      return { id, outcome: 'new' };
    }
  }

  /** Queues many scans at once (batches): one admission decision for all the new ones. */
  async submitMany(urls: readonly string[], options: ScanOptions, ctx: SubmitContext): Promise<Array<{ id: string; outcome: SubmitOutcome }>> {
    const requests = urls.map((url) => ({ url, cacheKey: cacheKeyOf(url, options), id: newScanId() }));
    const decisions = await this.decide(requests, ctx.fresh === true);
    const admitted = () => requests.filter((_, i) => decisions[i]!.outcome === 'new');
    // From admission on, not only from the add: the checks below can take a while (a job this
    // producer is adding), and a twin decided meanwhile would otherwise judge these markers stale.
    const releases = [this.hold(admitted().map((r) => r.id))];
    let adding = false;
    try {
      // As in submit: a marker can outlive its job (failed by BullMQ without a final record, or
      // removed). Those requests are decided again instead of joining a job that will never finish.
      // A twin of a request of this batch (the same page under another #fragment) joins its job,
      // which is not in the queue yet: it is not stale.
      const admittedIds = new Set(decisions.filter((d) => d.outcome === 'new').map((d) => d.id));
      // The live job each request joins (null: its marker is stale; undefined: it joins none).
      const joined = await Promise.all(decisions.map((d) => (d.outcome === 'inflight' && !admittedIds.has(d.id) ? this.liveJob(d.id) : undefined)));
      const stale = joined.flatMap((job, i) => (job === null ? [i] : []));
      if (stale.length) {
        await Promise.all(stale.map((i) => this.clearMarker(requests[i]!.cacheKey, decisions[i]!.id)));
        const again = await this.decide(stale.map((i) => requests[i]!), ctx.fresh === true);
        stale.forEach((i, j) => {
          decisions[i] = again[j]!;
        });
        releases.push(this.hold(stale.filter((i) => decisions[i]!.outcome === 'new').map((i) => requests[i]!.id)));
      }
      const bulk = admitted().map((r) => ({ name: 'scan', data: this.data(r.url, options, r.cacheKey, ctx), opts: this.jobOptions(r.id, ctx) }));
      adding = true;
      if (bulk.length) await this.queue.addBulk(bulk);
      await Promise.all(joined.map((job, i) => job && this.raisePriority(decisions[i]!.id, ctx.priority, job)));
    } catch (err) {
      // Refused (or failed) before the add, the admitted ids never reach the queue: their markers go
      // now instead of capturing identical requests until a liveness check judges them stale. From
      // the add on, they stay (see addFailed).
      if (!adding) await Promise.all(admitted().map((r) => this.clearMarker(r.cacheKey, r.id)));
      throw toRedisError(err);
    } finally {
      for (const release of releases) release();
      await this.release(admitted().map((r) => r.id));
    }
    return decisions;
  }

  /**
   * The job of `id` while it may still run; null once it finished or is gone. A job admitted and
   * not in the queue yet (its producer, this one or another, is adding it: the reservation is
   * there) is waited for, up to ADD_WAIT_MS: judged by the job alone before its add is over, it
   * would be stale and its page queued twice. The reservation is read before the job: it is
   * dropped only after the add, so a job added between the two reads is found. A reservation that
   * outlives the wait (a producer that died between admission and add) leaves the judgement to
   * the job: at worst a page scanned twice, never a request joined to a job that never comes.
   */
  private async liveJob(id: string): Promise<Job | null> {
    // Added by this producer: its own add is awaited (no Redis round trips, no time limit but the add's).
    const own = this.adding.get(id);
    if (own) await own;
    else {
      for (const started = performance.now(); performance.now() - started < ADD_WAIT_MS; ) {
        // Its score is its expiry: one past it (its producer is gone) counts no longer, pruned or not.
        const expires = await this.redisCall(() => this.redis.zscore(this.keys.admitting, id));
        if (expires === null || Number(expires) <= Date.now()) break;
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    }
    const job = await this.redisCall(() => Job.fromId(this.queue, id));
    if (!job) return null;
    const state = await this.redisCall(() => job.getState());
    return state !== 'failed' && state !== 'completed' && state !== 'unknown' ? job : null;
  }

  /**
   * A request joining a job queued at a lower priority lifts the job to its own: a high-priority
   * scan is not left behind a low-priority batch that named its page first. Best effort: a job
   * that finished or went meanwhile keeps what it had, and the request is answered either way.
   */
  private async raisePriority(id: string, priority: Priority, known?: Job): Promise<void> {
    if (priority === 'low') return;
    try {
      const job = known ?? (await Job.fromId(this.queue, id));
      if (job && job.priority > PRIORITY[priority]) await job.changePriority({ priority: PRIORITY[priority] });
    } catch {
      // Nothing to undo: the job runs at its old priority.
    }
  }

  private neverFits(news: number): WcagaiError {
    const max = this.settings.maxQueueDepth;
    return new WcagaiError('VALIDATION_FAILED', `${news} new scans at once do not fit the queue, whose limit (MAX_QUEUE_DEPTH) is ${max}: submit fewer at once`, {
      details: { field: 'urls', newScans: news, maxQueueDepth: max },
    });
  }

  private queueFull(depth: number): WcagaiError {
    return new WcagaiError('QUEUE_FULL', `queue holds ${depth} scans, its limit is ${this.settings.maxQueueDepth}; retry later`, {
      details: { retryAfterSeconds: 5, depth, maxQueueDepth: this.settings.maxQueueDepth },
    });
  }

  /** waiting (waiting for a retry included) + active (+ admitted jobs not added yet), the figure admission control compares with MAX_QUEUE_DEPTH. */
  async depth(): Promise<number> {
    const k = this.keys;
    const replies = (await this.redisCall(() => this.redis.multi().llen(k.wait).llen(k.paused).zcard(k.prioritized).llen(k.active).zcard(k.delayed).zcount(k.admitting, Date.now(), '+inf').exec())) as Array<[unknown, number]>;
    return replies.reduce((sum, [, n]) => sum + n, 0);
  }

  /** Queue figures for health, the API and the dashboard. */
  async capacity(): Promise<Capacity> {
    const counts = await this.redisCall(() => this.queue.getJobCounts('waiting', 'prioritized', 'paused', 'active', 'delayed', 'failed', 'completed'));
    const paused = await this.redisCall(() => this.queue.isPaused());
    const waiting = (counts.waiting ?? 0) + (counts.prioritized ?? 0) + (counts.paused ?? 0);
    const active = counts.active ?? 0;
    const delayed = counts.delayed ?? 0;
    const max = this.settings.maxQueueDepth;
    // What admission control counts: scans waiting for a retry hold room too.
    const utilizationPercent = Math.round(((waiting + active + delayed) / max) * 1000) / 10;
    return {
      waiting,
      active,
      delayed,
      failed: counts.failed ?? 0,
      completed: counts.completed ?? 0,
      paused,
      maxCapacity: max,
      utilizationPercent,
      state: utilizationPercent >= 100 ? 'critical' : utilizationPercent >= 80 ? 'warning' : 'healthy',
    };
  }

  /** The scan as the API shows it: the final record when there is one, else the live job. */
  async view(id: string): Promise<ScanView | null> {
    const stored = await this.redisCall(() => this.store.get(id));
    if (stored) return stored;
    const job = await this.redisCall(() =>
      Job.fromId<ScanJobData>(this.queue, id).catch((err: unknown) => {
        // Redis answered: a job whose stored fields are not JSON is corrupt (INTERNAL), not an outage.
        if (err instanceof SyntaxError) throw new WcagaiError('INTERNAL', `stored job of scan ${id} is corrupt: not valid JSON`, { cause: err, details: { scanId: id } });
        throw err;
      }),
    );
    if (!job) return null;
    const state = await this.redisCall(() => job.getState());
    const status: ScanStatus = state === 'active' ? 'active' : state === 'completed' ? 'completed' : state === 'failed' ? 'failed' : 'queued';
    if (status === 'completed' || status === 'failed') {
      // The worker stores the final record before the job finishes, so a job that finished after the
      // first read has its record now; without this re-read a poller sees the job-only view of a scan that has its record.
      const final = await this.redisCall(() => this.store.get(id));
      if (final) return final;
      // A completed job had its record stored before it completed: without one, the record has
      // expired (RESULT_TTL shorter than BullMQ keeps completed jobs). The scan is gone, as it is
      // once the job goes too; shown as completed without its result, its report was an empty pass.
      if (status === 'completed') return null;
    }
    const iso = (t?: number) => (t ? new Date(t).toISOString() : null);
    return {
      id,
      status,
      url: job.data.url,
      options: job.data.options,
      // attemptsMade counts finished attempts; a running one counts too, as its final record will.
      attempts: status === 'active' ? job.attemptsMade + 1 : job.attemptsMade,
      createdAt: iso(job.timestamp),
      // processedOn is when the latest attempt started: a scan queued again (waiting for a retry,
      // or handed back at shutdown) has not started the attempt it waits for.
      startedAt: status === 'queued' ? null : iso(job.processedOn),
      // Finished here means failed: a completed job without its record is gone (above).
      finishedAt: status === 'failed' ? iso(job.finishedOn) : null,
      cached: false,
      ...(job.data.requestId ? { requestId: job.data.requestId } : {}),
      ...(job.data.batchId ? { batchId: job.data.batchId } : {}),
      // Failed without a final record (the stall check gave up on it, or its worker died storing it): the
      // code and message its failure carries, as the DLQ reads them.
      ...(status === 'failed' ? { error: classifyFailure(job.failedReason) } : {}),
    };
  }

  private async redisCall<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw toRedisError(err);
    }
  }
}
