import type { RedisClient } from '../../queue/redis.js';

/**
 * Adds ARGV[2] requests to a fixed window counter; the window starts with its first request.
 * Returns the count after them and the window's remaining milliseconds.
 */
const INCR_SCRIPT = `
local n = tonumber(ARGV[2])
local current = redis.call('INCRBY', KEYS[1], n)
if current == n then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  return {current, tonumber(ARGV[1])}
end
return {current, redis.call('PTTL', KEYS[1])}
`;

const READ_SCRIPT = `
local current = redis.call('GET', KEYS[1])
if not current then return {0, 0} end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then ttl = 0 end
return {tonumber(current), ttl}
`;

type Answer = { current: number; ttl: number };
type Callback = (err: Error | null, res?: Answer) => void;

interface Commands {
  wcagaiRateLimit(key: string, windowMs: number, n: number): Promise<[number, number]>;
  wcagaiRateLimitRead(key: string): Promise<[number, number]>;
}

/**
 * A store for @fastify/rate-limit that keeps its counters in Redis (shared by every `serve`
 * process) like the plugin's own RedisStore, with the same keys and fixed windows, but counts the
 * requests of one event-loop turn that share a key with one INCRBY: under load a turn brings
 * dozens of requests of one API key, and each still gets its own place in the count.
 */
export function batchedRedisStore(redis: RedisClient, nameSpace: string) {
  const client = redis as unknown as RedisClient & Commands;
  if (!('wcagaiRateLimit' in client)) {
    redis.defineCommand('wcagaiRateLimit', { numberOfKeys: 1, lua: INCR_SCRIPT });
    redis.defineCommand('wcagaiRateLimitRead', { numberOfKeys: 1, lua: READ_SCRIPT });
  }

  return class BatchedRedisStore {
    private readonly pending = new Map<string, { key: string; windowMs: number; callbacks: Callback[] }>();

    constructor(
      params: { continueExceeding?: boolean; exponentialBackoff?: boolean } = {},
      private readonly prefix = nameSpace,
    ) {
      // Both stretch a window per request: not what a batched count can give each request.
      if (params.continueExceeding || params.exponentialBackoff) throw new Error('the batched rate-limit store supports fixed windows only');
    }

    incr(key: string, cb: Callback, windowMs: number): void {
      const full = this.prefix + key;
      const group = `${windowMs}:${full}`;
      const entry = this.pending.get(group);
      if (entry) {
        entry.callbacks.push(cb);
        return;
      }
      if (this.pending.size === 0) setImmediate(() => this.flush());
      this.pending.set(group, { key: full, windowMs, callbacks: [cb] });
    }

    read(key: string, cb: Callback): void {
      client.wcagaiRateLimitRead(this.prefix + key).then(
        ([current, ttl]) => cb(null, { current, ttl }),
        (err: Error) => cb(err),
      );
    }

    /** A route with a limit of its own counts under its own keys (the plugin passes the route's merged options). */
    child(routeOptions: object): BatchedRedisStore {
      const merged = routeOptions as { routeInfo: { method: string; url: string }; continueExceeding?: boolean; exponentialBackoff?: boolean };
      return new BatchedRedisStore(merged, `${this.prefix}${merged.routeInfo.method}${merged.routeInfo.url}-`);
    }

    private flush(): void {
      const groups = [...this.pending.values()];
      this.pending.clear();
      for (const { key, windowMs, callbacks } of groups) {
        const n = callbacks.length;
        client.wcagaiRateLimit(key, windowMs, n).then(
          ([current, ttl]) => callbacks.forEach((cb, i) => cb(null, { current: current - n + 1 + i, ttl })),
          (err: Error) => callbacks.forEach((cb) => cb(err)),
        );
      }
    }
  };
}
