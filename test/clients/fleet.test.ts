import { Redis, type RedisOptions } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BreakerFleet } from '../../src/clients/fleet.js';
import { DEFAULT_POLICY, ServicePolicy } from '../../src/clients/policies.js';
import { BreakerRegistry } from '../../src/clients/registry.js';
import { createLogger } from '../../src/observability/logger.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { LogSink, uniquePrefix, waitFor } from '../support/service.js';

/** Breaker control of several processes (one BreakerFleet each) through a redis-server of this file's own. */

let server: RedisServer;
const connections: Redis[] = [];
const fleets: BreakerFleet[] = [];

beforeAll(async () => {
  server = await startRedisServer();
});

afterAll(async () => {
  await Promise.allSettled(fleets.map((f) => f.close()));
  for (const c of connections) c.disconnect();
  await server?.close();
});

function connection(options: RedisOptions = {}): Redis {
  const c = new Redis(server.url, { maxRetriesPerRequest: 1, ...options });
  c.on('error', () => undefined); // a restart of the server below drops every connection for a moment
  connections.push(c);
  return c;
}

/**
 * One process: its registry and fleet. Its commands to Redis (not its subscription) take `latencyMs` more;
 * `subscriber` replaces its own subscription connection.
 */
async function fleetProcess(prefix: string, origin: string, latencyMs = 0, subscriber: Redis = connection()) {
  const registry = new BreakerRegistry();
  registry.add(new ServicePolicy('ai', DEFAULT_POLICY).breaker);
  const redis = connection();
  const slow = new Proxy(redis, {
    get(target, key) {
      const value = Reflect.get(target, key) as unknown;
      if (typeof value !== 'function') return value;
      return async (...args: unknown[]) => {
        if (latencyMs) await new Promise((r) => setTimeout(r, latencyMs));
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  const fleet = await BreakerFleet.connect(registry, {
    publisher: slow,
    subscriber,
    channel: `{${prefix}}:breakers:control`,
    isolatedKey: `{${prefix}}:breakers:isolated`,
    origin,
    logger: createLogger({ level: 'info', destination: new LogSink() }),
  });
  fleets.push(fleet);
  return { registry, fleet, publisher: redis, state: () => registry.snapshot().ai!.state };
}

describe('breaker control across processes', () => {
  it('a concurrent isolate and reset from two processes end the same way in both, in the isolated set, and in a process started later', async () => {
    const prefix = uniquePrefix('fleet');
    const isolatedKey = `{${prefix}}:breakers:isolated`;
    const redis = connection();
    // A's isolate reaches Redis late; B resets in between.
    const a = await fleetProcess(prefix, 'A', 100);
    const b = await fleetProcess(prefix, 'B');
    await Promise.all([a.fleet.act('isolate', 'ai'), new Promise((r) => setTimeout(r, 20)).then(() => b.fleet.act('reset', 'ai'))]);
    const inSet = async () => (await redis.smembers(isolatedKey)).includes('ai');
    const agreed = await waitFor(async () => (a.state() === b.state() && (a.state() === 'ISOLATED') === (await inSet()) ? a.state() : undefined), {
      timeoutMs: 3_000,
      what: 'both processes and the isolated set to agree',
    }).catch(async () => `A ${a.state()}, B ${b.state()}, in the set: ${String(await inSet())}`);
    expect(['ISOLATED', 'CLOSED']).toContain(agreed);
    const late = await fleetProcess(prefix, 'C');
    expect(late.state()).toBe(agreed);
  });

  it('applies an action here and reports how many other processes it reached', async () => {
    const prefix = uniquePrefix('fleet');
    const a = await fleetProcess(prefix, 'A');
    const b = await fleetProcess(prefix, 'B');
    const answer = await a.fleet.act('isolate', 'ai');
    expect(answer).toMatchObject({ name: 'ai', breaker: { state: 'ISOLATED' }, reached: 1 });
    await waitFor(() => b.state() === 'ISOLATED', { timeoutMs: 3_000, what: 'the isolation to reach B' });
    expect((await b.fleet.act('reset', 'ai')).breaker.state).toBe('CLOSED');
    await waitFor(() => a.state() === 'CLOSED', { timeoutMs: 3_000, what: 'the reset to reach A' });
    await expect(a.fleet.act('reset', 'nope')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('a process whose subscription was down while an action was published follows the deployment once it is back', async () => {
    const prefix = uniquePrefix('fleet');
    const a = await fleetProcess(prefix, 'A');
    // B's subscription comes back 2 s after it drops (a network blip): long enough that A's action,
    // published right after the drop, misses it even on a loaded machine.
    const subscriber = connection({ retryStrategy: () => 2_000 });
    const b = await fleetProcess(prefix, 'B', 0, subscriber);
    const admin = connection();
    const blip = async () => {
      await waitFor(() => subscriber.status === 'ready', { timeoutMs: 5_000, what: "B's subscription to be up" });
      await admin.client('KILL', 'ADDR', `127.0.0.1:${String((subscriber as unknown as { stream: { localPort: number } }).stream.localPort)}`);
      await waitFor(() => subscriber.status !== 'ready', { timeoutMs: 3_000, what: "B's subscription to drop" });
    };
    await blip();
    expect((await a.fleet.act('isolate', 'ai')).reached).toBe(0);
    await waitFor(() => b.state() === 'ISOLATED', { timeoutMs: 5_000, what: 'B to catch up with the isolation it missed' });
    // And the other way round: a reset it missed.
    await blip();
    expect((await a.fleet.act('reset', 'ai')).reached).toBe(0);
    await waitFor(() => b.state() === 'CLOSED', { timeoutMs: 5_000, what: 'B to catch up with the reset it missed' });
  });
  it('close leaves nothing behind on the subscription connection', async () => {
    const subscriber = connection();
    const before = { message: subscriber.listenerCount('message'), ready: subscriber.listenerCount('ready') };
    const p = await fleetProcess(uniquePrefix('fleet-close'), 'close');
    const { fleet } = await fleetProcess(uniquePrefix('fleet-close'), 'close-2', 0, subscriber);
    expect(subscriber.listenerCount('message')).toBe(before.message + 1);
    await fleet.close();
    expect({ message: subscriber.listenerCount('message'), ready: subscriber.listenerCount('ready') }).toEqual(before);
    await p.fleet.close();
  });
});

describe('breaker control after Redis restarted empty', () => {
  it('numbers new actions after those applied before: they are not dropped as stale', async () => {
    const prefix = uniquePrefix('fleet');
    const a = await fleetProcess(prefix, 'A');
    const b = await fleetProcess(prefix, 'B');
    for (let i = 0; i < 3; i++) {
      await a.fleet.act('isolate', 'ai');
      await a.fleet.act('reset', 'ai');
    }
    await waitFor(() => b.state() === 'CLOSED', { timeoutMs: 3_000, what: 'the last reset to reach B' });
    await server.stop();
    await server.restart(); // no persistence: the counter of actions is gone
    await waitFor(async () => (await a.publisher.ping().catch(() => undefined)) === 'PONG', { timeoutMs: 5_000, what: "A's connection to Redis to be back" });
    const isolate = await a.fleet.act('isolate', 'ai');
    expect(isolate.breaker.state).toBe('ISOLATED');
    await waitFor(() => b.state() === 'ISOLATED', { timeoutMs: 5_000, what: 'the isolation to reach B' });
  });
});
