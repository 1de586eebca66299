import type { ChainableCommander } from 'ioredis';
import type { DlqEntry, DlqPage, DlqStats, DlqSummary } from '../domain/dlq.js';
import { WcagaiError } from '../errors/catalogue.js';
import type { Keys } from './keys.js';
import type { RedisClient } from './redis.js';

/**
 * Storage of the dead-letter queue, under the deployment's hash tag:
 *   dlq:e:<id>    HASH json, rev, code, host, day, t, status (t = last failure, ms)
 *   dlq:t         ZSET id -> t (listing and age), dlq:c:<code> and dlq:h:<host> ZSETs likewise
 *   dlq:n:code|host|day  HASH counters (HINCRBY), so stats never walk the entries
 *   dlq:j:<jobId> STRING -> DLQ id, set once per captured job: capture is idempotent
 *   dlq:r         ZSET id -> when its replay is next checked (ms; 0 = at once), the entries whose
 *                 status is `retrying`: figures settle completed replays from it, not from a walk
 *   dlq:r:built   STRING, set once dlq:r holds every retrying entry (entries written before the
 *                 index existed were added to it by a walk of dlq:t)
 *
 * Every write goes through one script that checks the entry's revision (optimistic
 * concurrency: JS builds the new JSON, Redis applies it only if nobody wrote in between) and
 * moves the entry between indexes and counters, so they never drift from the entries.
 */
const UNINDEX = `
local function dec(h, f)
  if not f then return end
  if redis.call('HINCRBY', h, f, -1) <= 0 then redis.call('HDEL', h, f) end
end
local function unindex(entryKey, id, timeKey, codes, hosts, days, codePrefix, hostPrefix, retryingKey)
  redis.call('ZREM', retryingKey, id)
  local old = redis.call('HMGET', entryKey, 'code', 'host', 'day')
  if not old[1] then return false end
  redis.call('ZREM', timeKey, id)
  redis.call('ZREM', codePrefix .. old[1], id)
  redis.call('ZREM', hostPrefix .. old[2], id)
  dec(codes, old[1])
  dec(hosts, old[2])
  dec(days, old[3])
  return true
end
`;

/**
 * Writes entries, each only if its stored revision is the expected one.
 * KEYS: time index, code counts, host counts, day counts, retrying index.
 * ARGV: entry prefix, job marker prefix, code index prefix, host index prefix, marker TTL ms, then
 * per entry: expected rev ('' = must not exist), id, json ('' = delete), code, host, day, t,
 * status, job id to mark ('' = none).
 * Returns per entry 'ok', rev | 'dup', existing marker value | 'conflict', current rev.
 */
const WRITE_SCRIPT = `${UNINDEX}
local out = {}
for i = 6, #ARGV, 9 do
  local expected, id, json, code, host, day, t, status, jobId = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], ARGV[i + 6], ARGV[i + 7], ARGV[i + 8]
  local entryKey = ARGV[1] .. id
  local seen = jobId ~= '' and redis.call('GET', ARGV[2] .. jobId)
  local rev = redis.call('HGET', entryKey, 'rev')
  if seen then
    out[#out + 1] = 'dup'
    out[#out + 1] = seen
  elseif (rev or '') ~= expected then
    out[#out + 1] = 'conflict'
    out[#out + 1] = rev or ''
  else
    if rev then unindex(entryKey, id, KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[3], ARGV[4], KEYS[5]) end
    if jobId ~= '' then redis.call('SET', ARGV[2] .. jobId, id, 'PX', ARGV[5]) end
    if json == '' then
      redis.call('DEL', entryKey)
      out[#out + 1] = 'ok'
      out[#out + 1] = '0'
    else
      local nextRev = tostring((rev and tonumber(rev) or 0) + 1)
      redis.call('HSET', entryKey, 'json', json, 'code', code, 'host', host, 'day', day, 't', t, 'status', status, 'rev', nextRev)
      redis.call('ZADD', KEYS[1], t, id)
      redis.call('ZADD', ARGV[3] .. code, t, id)
      redis.call('ZADD', ARGV[4] .. host, t, id)
      redis.call('HINCRBY', KEYS[2], code, 1)
      redis.call('HINCRBY', KEYS[3], host, 1)
      redis.call('HINCRBY', KEYS[4], day, 1)
      -- Any write of a retrying entry (a new claim, another replay) makes it due for a check.
      if status == 'retrying' then redis.call('ZADD', KEYS[5], 0, id) end
      out[#out + 1] = 'ok'
      out[#out + 1] = nextRev
    end
  end
end
return out
`;

/**
 * Deletes entries: the ids in ARGV[6..], or (ARGV[4] = cutoff) up to ARGV[5] entries whose last
 * failure is at or before the cutoff, from offset ARGV[6], leaving those being retried (their
 * replay is running: its failure returns to the entry). KEYS: time index, code/host/day counts,
 * retrying index.
 * ARGV: entry prefix, code index prefix, host index prefix, cutoff ('' = by id), batch size, ids...
 * or offset. Returns the number removed, the number looked at, the number left being retried,
then the ids of those left.
 */
const DELETE_SCRIPT = `${UNINDEX}
local ids = {}
local byAge = ARGV[4] ~= ''
if byAge then
  ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[4], 'LIMIT', tonumber(ARGV[6]), tonumber(ARGV[5]))
else
  for i = 6, #ARGV do ids[#ids + 1] = ARGV[i] end
end
local n = 0
local kept = {}
for _, id in ipairs(ids) do
  local key = ARGV[1] .. id
  if byAge and redis.call('HGET', key, 'status') == 'retrying' then
    kept[#kept + 1] = id
  elseif unindex(key, id, KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[2], ARGV[3], KEYS[5]) then
    redis.call('DEL', key)
    n = n + 1
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
local out = {n, #ids, #kept}
for _, id in ipairs(kept) do out[#out + 1] = id end
return out
`;

/**
 * After the replays of retrying entries were checked: each entry still retrying at the revision
 * that was checked is next due at ARGV[2]; an id whose entry is gone or no longer retrying (a
 * write by a version of wcagai without this index) leaves the index. A rewritten entry stays due.
 * KEYS: retrying index. ARGV: entry prefix, due time (ms), then per entry: id, rev checked.
 * Returns the number of ids removed.
 */
const RECHECK_SCRIPT = `
local n = 0
for i = 3, #ARGV, 2 do
  local id, rev = ARGV[i], ARGV[i + 1]
  local cur = redis.call('HMGET', ARGV[1] .. id, 'rev', 'status')
  if cur[2] ~= 'retrying' then
    n = n + redis.call('ZREM', KEYS[1], id)
  elseif cur[1] == rev then
    redis.call('ZADD', KEYS[1], 'XX', ARGV[2], id)
  end
end
return n
`;

/**
 * Adds the entries among ARGV[2..] whose status is retrying to the retrying index (rebuilding it
 * over entries written before it existed). KEYS: retrying index. ARGV: entry prefix, ids...
 * Returns the number added.
 */
const INDEX_SCRIPT = `
local n = 0
for i = 2, #ARGV do
  if redis.call('HGET', ARGV[1] .. ARGV[i], 'status') == 'retrying' then
    n = n + redis.call('ZADD', KEYS[1], 'NX', 0, ARGV[i])
  end
end
return n
`;

/** How long a captured job id is remembered: longer than BullMQ keeps failed jobs (7 days). */
const MARKER_TTL_MS = 8 * 86_400_000;
/**
 * Failed jobs the start-up sweep looks at: those that failed within this window, where a capture
 * marker still says whether they were captured. BullMQ removes failed jobs by age only when
 * another job fails, so in a quiet deployment an older failed job can outlive its marker; taken
 * again, it would bring back an entry replayed or deleted since.
 */
export const SWEEP_WINDOW_MS = MARKER_TTL_MS - 86_400_000;
const HOUR_MS = 3_600_000;
const PURGE_BATCH = 500;
/** Entries per round trip when the retrying index is read, rechecked or rebuilt. */
const RETRYING_BATCH = 500;

export type WriteOutcome = { status: 'ok'; rev: string } | { status: 'dup'; existing: string } | { status: 'conflict' };

export interface StoredEntry {
  entry: DlqEntry;
  rev: string;
}

type Scripted = {
  wcagaiDlqWrite(...args: Array<string | number>): Promise<string[]>;
  wcagaiDlqDelete(...args: Array<string | number>): Promise<[number, number, number, ...string[]]>;
  wcagaiDlqRecheck(...args: Array<string | number>): Promise<number>;
  wcagaiDlqIndex(...args: Array<string | number>): Promise<number>;
};

/** UTC day of an ISO time: the byDay counter. */
export function dayOf(iso: string): string {
  return iso.slice(0, 10);
}

function encodeCursor(score: number, id: string): string {
  return Buffer.from(JSON.stringify([score, id])).toString('base64url');
}

/** A cursor of `list` as its parts; null for anything this DLQ did not hand out. */
export function decodeCursor(cursor: string): { score: number; id: string } | null {
  try {
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(value) && typeof value[0] === 'number' && typeof value[1] === 'string') return { score: value[0], id: value[1] };
  } catch {
    // not a cursor of ours
  }
  return null;
}

function toCounts(hash: Record<string, string>, order: 'count' | 'key'): Record<string, number> {
  const pairs = Object.entries(hash)
    .map(([k, v]) => [k, Number(v)] as const)
    .filter(([, n]) => n > 0);
  pairs.sort(order === 'count' ? (a, b) => b[1] - a[1] || a[0].localeCompare(b[0]) : (a, b) => a[0].localeCompare(b[0]));
  return Object.fromEntries(pairs);
}

/** Reads and writes DLQ entries and their indexes; knows nothing of BullMQ. */
export class DlqStore {
  private readonly r: Scripted;
  /** The rebuild of the retrying index under way or done in this process (null until asked, or after it failed). */
  private indexed: Promise<void> | null = null;

  constructor(
    readonly redis: RedisClient,
    private readonly keys: Keys,
  ) {
    redis.defineCommand('wcagaiDlqWrite', { numberOfKeys: 5, lua: WRITE_SCRIPT });
    redis.defineCommand('wcagaiDlqDelete', { numberOfKeys: 5, lua: DELETE_SCRIPT });
    redis.defineCommand('wcagaiDlqRecheck', { numberOfKeys: 1, lua: RECHECK_SCRIPT });
    redis.defineCommand('wcagaiDlqIndex', { numberOfKeys: 1, lua: INDEX_SCRIPT });
    this.r = redis as unknown as Scripted;
  }

  private writeHead(): Array<string | number> {
    const k = this.keys.dlq;
    return [k.time, k.counts('code'), k.counts('host'), k.counts('day'), this.keys.dlq.retrying, k.entry(''), k.job(''), k.byCode(''), k.byHost(''), MARKER_TTL_MS];
  }

  private static writeArgs(id: string, entry: DlqEntry | null, expectedRev: string, markerJobId?: string): Array<string | number> {
    if (!entry) return [expectedRev, id, '', '', '', '', 0, '', markerJobId ?? ''];
    return [expectedRev, id, JSON.stringify(entry), entry.code, entry.host, dayOf(entry.lastFailedAt), Date.parse(entry.lastFailedAt), entry.status, markerJobId ?? ''];
  }

  /**
   * Writes `entry` (null deletes it) if the stored revision is still `expectedRev` ('' for a new
   * entry). With `markerJobId`, the write happens only once per job id: a second call is 'dup'.
   */
  async write(id: string, entry: DlqEntry | null, expectedRev: string, markerJobId?: string): Promise<WriteOutcome> {
    const [status, value] = await this.r.wcagaiDlqWrite(...this.writeHead(), ...DlqStore.writeArgs(id, entry, expectedRev, markerJobId));
    if (status === 'ok') return { status: 'ok', rev: value! };
    if (status === 'dup') return { status: 'dup', existing: value! };
    return { status: 'conflict' };
  }

  /**
   * Queues the insertion of new entries on a pipeline, through the same script as `write`, many
   * per call (bulk loads and tests). Each entry is marked as the capture of its job id.
   */
  insertInto(pipeline: ChainableCommander, entries: readonly DlqEntry[]): void {
    for (let i = 0; i < entries.length; i += 500) {
      const args = entries.slice(i, i + 500).flatMap((e) => DlqStore.writeArgs(e.id, e, '', e.jobId));
      (pipeline as unknown as Scripted).wcagaiDlqWrite(...this.writeHead(), ...args);
    }
  }

  /** The DLQ id captured for a job, if it was. */
  async capturedAs(jobId: string): Promise<string | null> {
    return this.redis.get(this.keys.dlq.job(jobId));
  }

  async read(id: string): Promise<StoredEntry | null> {
    const [json, rev] = await this.redis.hmget(this.keys.dlq.entry(id), 'json', 'rev');
    return json && rev ? { entry: JSON.parse(json) as DlqEntry, rev } : null;
  }

  /**
   * Applies `change` to an entry with optimistic concurrency, re-reading on conflict. `change`
   * returns the new entry, null to delete it, or undefined to leave it as it is.
   * Resolves to the entry written (null when deleted or missing, the unchanged one when left).
   */
  async update(id: string, change: (entry: DlqEntry) => DlqEntry | null | undefined): Promise<{ found: boolean; entry: DlqEntry | null }> {
    for (let attempt = 0; attempt < 50; attempt++) {
      const stored = await this.read(id);
      if (!stored) return { found: false, entry: null };
      const next = change(structuredClone(stored.entry));
      if (next === undefined) return { found: true, entry: stored.entry };
      const outcome = await this.write(id, next, stored.rev);
      if (outcome.status === 'ok') return { found: true, entry: next };
    }
    throw new Error(`DLQ entry ${id} kept changing under 50 consecutive updates`);
  }

  /** Removes entries by id; resolves to the number that existed. */
  async remove(ids: readonly string[]): Promise<number> {
    if (ids.length === 0) return 0;
    const [n] = await this.r.wcagaiDlqDelete(...this.deleteKeys(), '', 0, ...ids);
    return n;
  }

  /**
   * Removes every entry whose last failure is at or before `cutoffMs` and that is not being
   * retried, in batches; resolves to the number removed and the ids of those left being retried.
   */
  async removeOlderThan(cutoffMs: number): Promise<{ removed: number; retrying: string[] }> {
    let removed = 0;
    // Entries left in place (being retried) stay at the front of the range: the next batch starts after them.
    const retrying: string[] = [];
    for (;;) {
      const [n, seen, , ...left] = await this.r.wcagaiDlqDelete(...this.deleteKeys(), Math.floor(cutoffMs), PURGE_BATCH, retrying.length);
      removed += n;
      retrying.push(...left);
      if (seen < PURGE_BATCH) return { removed, retrying };
    }
  }

  private deleteKeys(): string[] {
    const k = this.keys.dlq;
    return [k.time, k.counts('code'), k.counts('host'), k.counts('day'), this.keys.dlq.retrying, k.entry(''), k.byCode(''), k.byHost('')];
  }

  /**
   * Makes sure the retrying index holds every retrying entry, once per store: a DLQ written
   * before the index existed has retrying entries outside it, so the first call walks the time
   * index (ZSCAN, RETRYING_BATCH ids a round trip) and adds them, then marks the index built for
   * every process. Writes keep it up to date from then on.
   */
  ensureRetryingIndex(): Promise<void> {
    this.indexed ??= this.buildRetryingIndex().catch((err: unknown) => {
      this.indexed = null;
      throw err;
    });
    return this.indexed;
  }

  private async buildRetryingIndex(): Promise<void> {
    if (await this.redis.get(this.keys.dlq.retryingBuilt)) return;
    const entryPrefix = this.keys.dlq.entry('');
    let cursor = '0';
    do {
      const [next, raw] = await this.redis.zscan(this.keys.dlq.time, cursor, 'COUNT', RETRYING_BATCH);
      cursor = next;
      const ids = raw.filter((_, i) => i % 2 === 0);
      if (ids.length) await this.r.wcagaiDlqIndex(this.keys.dlq.retrying, entryPrefix, ...ids);
    } while (cursor !== '0');
    await this.redis.set(this.keys.dlq.retryingBuilt, '1');
  }

  /**
   * Ids of retrying entries from the retrying index: every one (`dueBy` null), or up to `limit`
   * of those due for a check at `dueBy` (ms), the longest due first.
   */
  async retryingIds(dueBy: number | null, limit = RETRYING_BATCH): Promise<string[]> {
    if (dueBy === null) return this.redis.zrange(this.keys.dlq.retrying, 0, -1);
    return this.redis.zrangebyscore(this.keys.dlq.retrying, '-inf', Math.floor(dueBy), 'LIMIT', 0, limit);
  }

  /** Entries by id, in one round trip (null for those missing). */
  async readMany(ids: readonly string[]): Promise<Array<StoredEntry | null>> {
    if (ids.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hmget(this.keys.dlq.entry(id), 'json', 'rev');
    const replies = (await pipeline.exec()) ?? [];
    return replies.map(([err, value]) => {
      if (err) throw err;
      const [json, rev] = value as [string | null, string | null];
      return json && rev ? { entry: JSON.parse(json) as DlqEntry, rev } : null;
    });
  }

  /**
   * Records that the replays of these entries were checked at the revision given ('' for an entry
   * found missing): those still retrying at it are next due at `dueAt`; ids whose entry is gone or
   * no longer retrying leave the index.
   */
  async recheck(checked: ReadonlyArray<{ id: string; rev: string }>, dueAt: number): Promise<void> {
    for (let i = 0; i < checked.length; i += RETRYING_BATCH) {
      const args = checked.slice(i, i + RETRYING_BATCH).flatMap(({ id, rev }) => [id, rev]);
      await this.r.wcagaiDlqRecheck(this.keys.dlq.retrying, this.keys.dlq.entry(''), Math.floor(dueAt), ...args);
    }
  }

  /** Ids of every entry of a code, a host or all, newest first. */
  async ids(filter: { code?: string; host?: string }): Promise<string[]> {
    const k = this.keys.dlq;
    return this.redis.zrevrange(filter.code ? k.byCode(filter.code) : filter.host ? k.byHost(filter.host) : k.time, 0, -1);
  }

  /** A page of entries, newest first. A code and a host together walk the code index and filter by host. */
  async list(query: { limit: number; cursor?: string; code?: string; host?: string }): Promise<DlqPage> {
    const k = this.keys.dlq;
    const index = query.code ? k.byCode(query.code) : query.host ? k.byHost(query.host) : k.time;
    const hostFilter = query.code && query.host ? query.host : undefined;
    let start = 0;
    let ties: { score: number; id: string } | null = null;
    const cursor = query.cursor ? decodeCursor(query.cursor) : null;
    // A mangled cursor would silently restart at the newest entry: a client paging with it would
    // see entries twice, or loop.
    if (query.cursor && !cursor) throw new WcagaiError('VALIDATION_FAILED', 'cursor: not a cursor of this DLQ (pass nextCursor of a previous page as it is)', { details: { field: 'cursor' } });
    if (cursor) {
      const [rank, score] = await Promise.all([this.redis.zrevrank(index, cursor.id), this.redis.zscore(index, cursor.id)]);
      if (rank !== null && Number(score) === cursor.score) start = rank + 1;
      else {
        // The cursor's entry left meanwhile: resume after its score, skipping its tie-mates already shown.
        start = await this.redis.zcount(index, `(${cursor.score}`, '+inf');
        ties = cursor;
      }
    }
    const entries: DlqEntry[] = [];
    const scores: number[] = [];
    const batch = Math.min(1_000, Math.max(query.limit + 1, hostFilter ? 200 : 0));
    let more = false;
    // A host filter over a code index may skip many; bound the walk so a page stays cheap.
    const maxScanned = hostFilter ? query.limit * 50 + 1_000 : Number.MAX_SAFE_INTEGER;
    let scanned = 0;
    // The last entry looked at, matching or not: where the next page starts when the walk's bound cut this one short.
    let lastSeen: { score: number; id: string } | null = null;
    let exhausted = false;
    while (entries.length <= query.limit && scanned < maxScanned) {
      const raw = await this.redis.zrevrange(index, start, start + batch - 1, 'WITHSCORES');
      if (raw.length === 0) {
        exhausted = true;
        break;
      }
      start += raw.length / 2;
      const ids: string[] = [];
      const idScores: number[] = [];
      for (let i = 0; i < raw.length; i += 2) {
        const id = raw[i]!;
        const score = Number(raw[i + 1]);
        // Tie-mates come in descending id order and may fill more than one batch.
        if (ties && score === ties.score && id >= ties.id) continue;
        if (ties && score < ties.score) ties = null;
        ids.push(id);
        idScores.push(score);
      }
      scanned += ids.length;
      const jsons = ids.length ? await this.readJsons(ids) : [];
      for (let i = 0; i < ids.length; i++) {
        const json = jsons[i];
        if (entries.length <= query.limit) lastSeen = { score: idScores[i]!, id: ids[i]! };
        if (!json) continue;
        const entry = JSON.parse(json) as DlqEntry;
        if (hostFilter && entry.host !== hostFilter) continue;
        entries.push(entry);
        scores.push(idScores[i]!);
      }
      if (raw.length / 2 < batch) {
        exhausted = true;
        break;
      }
    }
    if (entries.length > query.limit) {
      more = true;
      entries.length = query.limit;
    }
    const last = entries[entries.length - 1];
    if (more && last) return { entries, nextCursor: encodeCursor(scores[entries.length - 1]!, last.id) };
    // The walk's bound ended this page before the index did: a short page (even an empty one) with
    // a cursor, so matches further down are reached by paging on, never hidden behind a null cursor.
    if (!exhausted && lastSeen) return { entries, nextCursor: encodeCursor(lastSeen.score, lastSeen.id) };
    return { entries, nextCursor: null };
  }

  private async readJsons(ids: readonly string[]): Promise<Array<string | null>> {
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hget(this.keys.dlq.entry(id), 'json');
    const replies = (await pipeline.exec()) ?? [];
    return replies.map(([err, value]) => (err ? null : (value as string | null)));
  }

  /**
   * Totals from the counters: O(#codes + #hosts + #days), whatever the number of entries (the
   * DLQ settles completed replays of retrying entries before, see DeadLetterQueue.stats).
   */
  async stats(): Promise<DlqStats> {
    const k = this.keys.dlq;
    const replies = (await this.redis
      .multi()
      .zcard(k.time)
      .hgetall(k.counts('code'))
      .hgetall(k.counts('host'))
      .hgetall(k.counts('day'))
      .zrange(k.time, 0, 0, 'WITHSCORES')
      .zrevrange(k.time, 0, 0, 'WITHSCORES')
      .exec()) as Array<[Error | null, unknown]>;
    const value = <T>(i: number): T => {
      const [err, v] = replies[i]!;
      if (err) throw err;
      return v as T;
    };
    const iso = (pair: string[]) => (pair.length === 2 ? new Date(Number(pair[1])).toISOString() : null);
    return {
      total: value<number>(0),
      byCode: toCounts(value<Record<string, string>>(1), 'count'),
      byHost: toCounts(value<Record<string, string>>(2), 'count'),
      byDay: toCounts(value<Record<string, string>>(3), 'key'),
      oldest: iso(value<string[]>(4)),
      newest: iso(value<string[]>(5)),
    };
  }

  async size(): Promise<number> {
    return this.redis.zcard(this.keys.dlq.time);
  }

  async summary(now = Date.now()): Promise<DlqSummary> {
    const k = this.keys.dlq;
    const [[, size], [, oldest], [, lastHour]] = (await this.redis.multi().zcard(k.time).zrange(k.time, 0, 0, 'WITHSCORES').zcount(k.time, now - HOUR_MS, '+inf').exec()) as [
      [unknown, number],
      [unknown, string[]],
      [unknown, number],
    ];
    return { size, oldest: oldest.length === 2 ? new Date(Number(oldest[1])).toISOString() : null, lastHourAdded: lastHour };
  }
}
