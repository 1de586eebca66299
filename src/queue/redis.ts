import { readFileSync } from 'node:fs';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { Config } from '../config/schema.js';
import { maskUrlCredentials } from '../config/values.js';
import { WcagaiError } from '../errors/catalogue.js';

/** A connection to wherever the deployment's Redis is: one server (or a Sentinel-watched master), or a Cluster. */
export type RedisClient = Redis | Cluster;

export interface HostPort {
  host: string;
  port: number;
}

/**
 * Where Redis is, from the configuration. `url` always carries the credentials, database and TLS
 * (`rediss://`); in Sentinel and Cluster mode its host and port are not used.
 */
export type RedisTarget = (
  | { mode: 'standalone'; url: string }
  | { mode: 'sentinel'; url: string; sentinels: HostPort[]; name: string; sentinelPassword?: string | undefined }
  | { mode: 'cluster'; url: string; nodes: HostPort[] }
) & {
  /** A PEM file of the certificate authorities to trust for `rediss://` (instead of the system's). */
  tlsCaFile?: string | undefined;
};

/** Per-call tuning that callers may change; everything else follows from the connection's role. */
export interface RedisTuning {
  /** Milliseconds before a command without an answer fails (producer default 2 s). */
  commandTimeout?: number;
  /** Queue commands while (re)connecting instead of failing them at once (producer default false). */
  enableOfflineQueue?: boolean;
}

type TargetSettings = Pick<Config, 'REDIS_URL' | 'REDIS_SENTINELS' | 'REDIS_SENTINEL_NAME' | 'REDIS_SENTINEL_PASSWORD' | 'REDIS_CLUSTER_NODES'> & Partial<Pick<Config, 'REDIS_TLS_CA'>>;

/** `host:port` or `[v6]:port` -> { host, port }. */
export function parseHostPort(value: string): HostPort {
  const colon = value.lastIndexOf(':');
  return { host: value.slice(0, colon).replace(/^\[(.*)\]$/, '$1'), port: Number(value.slice(colon + 1)) };
}

/** The Redis target of a configuration (the schema refuses Sentinel and Cluster at once). */
export function redisTargetOf(config: TargetSettings): RedisTarget {
  const tls = config.REDIS_TLS_CA ? { tlsCaFile: config.REDIS_TLS_CA } : {};
  if (config.REDIS_CLUSTER_NODES.length) return { mode: 'cluster', url: config.REDIS_URL, nodes: config.REDIS_CLUSTER_NODES.map(parseHostPort), ...tls };
  if (config.REDIS_SENTINELS.length) {
    return { mode: 'sentinel', url: config.REDIS_URL, sentinels: config.REDIS_SENTINELS.map(parseHostPort), name: config.REDIS_SENTINEL_NAME, sentinelPassword: config.REDIS_SENTINEL_PASSWORD, ...tls };
  }
  return { mode: 'standalone', url: config.REDIS_URL, ...tls };
}

/** The target for messages and logs, password masked. */
export function describeRedisTarget(target: RedisTarget): string {
  const url = maskUrlCredentials(target.url);
  const list = (nodes: HostPort[]) => nodes.map((n) => (n.host.includes(':') ? `[${n.host}]:${n.port}` : `${n.host}:${n.port}`)).join(',');
  if (target.mode === 'sentinel') return `Sentinel master "${target.name}" via ${list(target.sentinels)}`;
  if (target.mode === 'cluster') return `Redis Cluster via ${list(target.nodes)}`;
  return url;
}

/** TLS options of a rediss:// target: the configured CAs, else the system's. */
function tlsOptions(t: RedisTarget): { ca?: Buffer } {
  return t.tlsCaFile ? { ca: readFileSync(t.tlsCaFile) } : {};
}

/** Credentials, database and TLS of a redis:// or rediss:// URL, for modes that do not connect to its host. */
function urlOptions(url: string): RedisOptions {
  const u = new URL(url);
  const out: RedisOptions = {};
  if (u.username) out.username = decodeURIComponent(u.username);
  if (u.password) out.password = decodeURIComponent(u.password);
  const db = Number(u.pathname.slice(1));
  if (u.pathname.length > 1 && Number.isInteger(db)) out.db = db;
  if (u.protocol === 'rediss:') out.tls = {};
  return out;
}

const reconnect = (times: number) => Math.min(100 * 2 ** Math.min(times, 5), 2_000);

/** Options of one server connection in a role (for Cluster: of each node connection). */
function roleOptions(role: 'producer' | 'worker', tuning: RedisTuning): RedisOptions {
  if (role === 'producer') {
    return { enableOfflineQueue: tuning.enableOfflineQueue ?? false, maxRetriesPerRequest: 1, connectTimeout: 1_000, commandTimeout: tuning.commandTimeout ?? 2_000, lazyConnect: false, enableAutoPipelining: true };
  }
  return {
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    ...(tuning.enableOfflineQueue !== undefined ? { enableOfflineQueue: tuning.enableOfflineQueue } : {}),
    ...(tuning.commandTimeout !== undefined ? { commandTimeout: tuning.commandTimeout } : {}),
  };
}

/**
 * The one place a Redis connection is made. `producer`: the API's connection, failing fast (no
 * offline queue, one retry per command) so a Redis outage becomes a 503 within a second;
 * `worker`: BullMQ's blocking commands need maxRetriesPerRequest null. Both reconnect by
 * themselves; with Sentinel they follow a failover to the new master, with Cluster slot moves.
 */
export function connectRedis(target: RedisTarget | string, role: 'producer' | 'worker', tuning: RedisTuning = {}): RedisClient {
  const t: RedisTarget = typeof target === 'string' ? { mode: 'standalone', url: target } : target;
  const options = roleOptions(role, tuning);
  const secure = new URL(t.url).protocol === 'rediss:';
  if (t.mode === 'standalone') return new Redis(t.url, { ...options, ...(secure ? { tls: tlsOptions(t) } : {}), retryStrategy: reconnect });
  const fromUrl = urlOptions(t.url);
  if (secure) fromUrl.tls = tlsOptions(t);
  if (t.mode === 'sentinel') {
    const tls = fromUrl.tls !== undefined;
    return new Redis({
      ...fromUrl,
      ...options,
      sentinels: t.sentinels,
      name: t.name,
      ...(t.sentinelPassword ? { sentinelPassword: t.sentinelPassword } : {}),
      // rediss:// means TLS to the sentinels and to the master they name.
      ...(tls ? { enableTLSForSentinelMode: true, sentinelTLS: tlsOptions(t) } : {}),
      retryStrategy: reconnect,
      sentinelRetryStrategy: reconnect,
    });
  }
  const { enableOfflineQueue, enableReadyCheck, lazyConnect, db: _db, ...perNode } = { ...fromUrl, ...options };
  const cluster: ClusterOptions = {
    redisOptions: perNode,
    clusterRetryStrategy: reconnect,
    // Cluster-level: a producer fails at once while no slot map is known, as with one server.
    enableOfflineQueue: enableOfflineQueue ?? true,
    enableReadyCheck: enableReadyCheck ?? true,
    ...(lazyConnect !== undefined ? { lazyConnect } : {}),
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 200,
    slotsRefreshTimeout: 2_000,
  };
  return new Cluster(t.nodes, cluster);
}

/** The API's fail-fast connection (see connectRedis); a URL gives a plain server connection. */
export function producerConnection(target: string, tuning?: RedisTuning): Redis;
export function producerConnection(target: RedisTarget | string, tuning?: RedisTuning): RedisClient;
export function producerConnection(target: RedisTarget | string, tuning: RedisTuning = {}): RedisClient {
  return connectRedis(target, 'producer', tuning);
}

/** A worker's connection (see connectRedis); a URL gives a plain server connection. */
export function workerConnection(target: string, tuning?: RedisTuning): Redis;
export function workerConnection(target: RedisTarget | string, tuning?: RedisTuning): RedisClient;
export function workerConnection(target: RedisTarget | string, tuning: RedisTuning = {}): RedisClient {
  return connectRedis(target, 'worker', tuning);
}

/** The servers that hold keys: the connection itself, or every master of a Cluster (SCAN runs per node). */
export function keyHolders(redis: RedisClient): Redis[] {
  return redis instanceof Cluster ? redis.nodes('master') : [redis];
}

/** A password refused or missing: retrying the connection cannot help. */
const AUTH_ERROR = /^(WRONGPASS|NOAUTH)\b|invalid password|invalid username-password/i;

/** Redis did not become ready: how long was waited, and the last connection error seen meanwhile. */
export class RedisNotReadyError extends Error {
  constructor(
    readonly timeoutMs: number,
    readonly lastError: string | undefined,
    /** The server refused the credentials: the wait ended at once. */
    readonly auth = false,
  ) {
    super(auth ? `Redis refused the credentials: ${lastError}` : `Redis not ready after ${timeoutMs} ms${lastError ? ` (last error: ${lastError})` : ''}`);
  }
}

/**
 * Resolves once the connection is ready; rejects with RedisNotReadyError after `timeoutMs`, or at
 * once when the server refuses the credentials (ioredis would go on reconnecting with them). With
 * `firstError`, any connection error ends the wait at once, rejecting with that error: a one-shot
 * command does not wait for reconnects.
 */
export async function waitReady(redis: RedisClient, timeoutMs = 5_000, options: { firstError?: boolean } = {}): Promise<void> {
  if (redis.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    let lastError: string | undefined;
    const timer = setTimeout(() => {
      cleanup();
      reject(new RedisNotReadyError(timeoutMs, lastError));
    }, timeoutMs);
    const onReady = () => {
      cleanup();
      resolve();
    };
    const onError = (err: Error) => {
      lastError = err.message.split('\n')[0]!.trim() || lastError;
      const auth = AUTH_ERROR.test(lastError ?? '');
      if (!auth && !options.firstError) return;
      cleanup();
      reject(auth ? new RedisNotReadyError(timeoutMs, lastError, true) : err);
    };
    const cleanup = () => {
      clearTimeout(timer);
      redis.off('ready', onReady);
      redis.off('error', onError);
    };
    redis.on('ready', onReady);
    redis.on('error', onError);
  });
}

/**
 * The one line a command prints when Redis cannot be used at start: where it was looked for, and
 * why (the connection's last error, or the refused credentials), then what to check. A way round
 * Redis that `check` offers (`…, or --url to use a server`: dlq, prospect) is offered for refused
 * credentials too; the other settings it names are not the password's.
 */
export function redisStartError(target: RedisTarget, err: unknown, check: string): WcagaiError {
  const where = describeRedisTarget(target);
  const why = err instanceof RedisNotReadyError ? err.lastError : err instanceof Error ? err.message.split('\n')[0] : undefined;
  if (why && AUTH_ERROR.test(why)) {
    const what = /^NOAUTH\b/.test(why) ? 'requires a password' : 'refused the credentials';
    // Behind Sentinel, the sentinels ask for a password of their own.
    const settings = target.mode === 'sentinel' ? 'REDIS_URL (the master) and REDIS_SENTINEL_PASSWORD (the sentinels)' : 'REDIS_URL';
    const around = /, or --url\b.*$/.exec(check)?.[0] ?? '';
    return new WcagaiError('REDIS_UNAVAILABLE', `Redis at ${where} ${what} (${why}); check the password in ${settings}${around}`);
  }
  const within = err instanceof RedisNotReadyError ? ` within ${err.timeoutMs / 1_000} s` : '';
  return new WcagaiError('REDIS_UNAVAILABLE', `cannot reach Redis at ${where}${within}${why ? ` (${why})` : ''}; ${check}`);
}

/**
 * Ends a connection that never became ready, and the start of a BullMQ queue built on it. BullMQ
 * reports that start's failure as an event of the queue once the connection ends: the queue must
 * still have its listener then (closed before, the report would be an unhandled rejection).
 */
export async function abandonConnection(redis: RedisClient, queue: { waitUntilReady(): Promise<unknown> }): Promise<void> {
  redis.disconnect();
  await settleWithin(queue.waitUntilReady(), 1_000);
}

/**
 * Waits for `work` at most `ms`, then carries on: for shutdown steps that talk to Redis, whose
 * commands wait in the offline queue (and never settle) while Redis is unreachable. Never rejects;
 * resolves true when `work` settled in time.
 */
export async function settleWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([work.then(() => true, () => true), expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** Redis failures become REDIS_UNAVAILABLE (503, retry after 5 s) so clients know to retry; a WcagaiError passes as it is. */
export function toRedisError(err: unknown): Error {
  if (err instanceof WcagaiError) return err;
  return new WcagaiError('REDIS_UNAVAILABLE', `queue store unavailable: ${(err as Error).message}`, { cause: err, details: { retryAfterSeconds: 5 } });
}

/** For `.catch`: a store whose Redis does not answer answers REDIS_UNAVAILABLE (503, retry), which the API's routes pass on. */
export function rethrowAsUnavailable(err: unknown): never {
  throw toRedisError(err);
}
