import type { Cluster, Redis } from 'ioredis';
import type { Logger } from 'pino';
import { z } from 'zod';
import { WcagaiError } from '../errors/catalogue.js';
import type { BreakerRegistry, BreakerSnapshot } from './registry.js';

/** `seq` orders the actions of the deployment (absent in messages of processes older than it). */
const messageSchema = z.object({ action: z.enum(['reset', 'isolate']), name: z.string(), origin: z.string(), seq: z.number().int().optional() });
type Action = z.output<typeof messageSchema>['action'];

/**
 * One fleet action in one step: numbers it (KEYS[2]), records it in the isolated set (KEYS[1]) and
 * publishes it (ARGV[4]), so the set and the messages are in the same order for every process.
 * A missing counter (a new deployment, a Redis that restarted empty) starts at Redis's clock in ms:
 * restarted at 0, it would number new actions below those the running processes have applied, and
 * they would drop them as stale. Returns { seq, subscribers reached }.
 */
const ACT_SCRIPT = `
if redis.call('EXISTS', KEYS[2]) == 0 then
  local t = redis.call('TIME')
  redis.call('SET', KEYS[2], t[1] .. string.format('%03d', math.floor(tonumber(t[2]) / 1000)))
end
local seq = redis.call('INCR', KEYS[2])
if ARGV[1] == 'isolate' then redis.call('SADD', KEYS[1], ARGV[2]) else redis.call('SREM', KEYS[1], ARGV[2]) end
local reached = redis.call('PUBLISH', ARGV[4], cjson.encode({ action = ARGV[1], name = ARGV[2], origin = ARGV[3], seq = seq }))
return { seq, reached }`;

/** The isolated set (KEYS[1]) and the number of the last action (KEYS[2]) in one step: { seq, names }. */
const READ_SCRIPT = `return { tonumber(redis.call('GET', KEYS[2]) or '0'), redis.call('SMEMBERS', KEYS[1]) }`;

export interface FleetOptions {
  /** A regular connection: publishes, and keeps the set of isolated breakers. */
  publisher: Redis | Cluster;
  /** A dedicated connection: once subscribed it can do nothing else. */
  subscriber: Redis | Cluster;
  /** Pub/sub channel of this deployment. */
  channel: string;
  /** Set of isolated breaker names, so processes started later isolate them too (`<isolatedKey>:seq` numbers the actions). */
  isolatedKey: string;
  /** This process's id; its own messages are not applied twice. */
  origin: string;
  logger: Logger;
  /** How often the isolated set is checked for actions this process missed (default 30 s). */
  catchUpMs?: number;
}

export interface FleetAnswer {
  name: string;
  /** This process's breaker after the action. */
  breaker: BreakerSnapshot;
  /** Other processes subscribed that received the action. */
  reached: number;
}

/** Breaker resets and isolations that reach every process of the deployment through Redis pub/sub. */
export class BreakerFleet {
  /** Per breaker, the `seq` of the last action applied here: an older one arriving later is stale. */
  private readonly applied = new Map<string, number>();
  /** The newest `seq` of the deployment known here: a larger one in Redis means messages were missed. */
  private seen = 0;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  /** The subscriber's listeners added here, removed by `close` (the connection may be shared). */
  private readonly listeners: Array<[event: string, listener: (...args: any[]) => void]> = [];

  private constructor(
    private readonly registry: BreakerRegistry,
    private readonly options: FleetOptions,
  ) {}

  /**
   * Subscribes, then isolates the breakers the deployment holds isolated. Messages published while the
   * subscription was down (a Redis restart, a network blip) are lost: the isolated set is read again
   * when it is back and every `catchUpMs`, and this process follows it if actions were missed.
   */
  static async connect(registry: BreakerRegistry, options: FleetOptions): Promise<BreakerFleet> {
    const fleet = new BreakerFleet(registry, options);
    const onMessage = (channel: string, text: string) => {
      if (channel === options.channel) fleet.receive(text);
    };
    options.subscriber.on('message', onMessage);
    fleet.listeners.push(['message', onMessage]);
    await options.subscriber.subscribe(options.channel);
    const read = await fleet.readDeployment().catch(() => null);
    const isolated = read?.isolated ?? [];
    fleet.seen = read?.seq ?? 0;
    for (const name of isolated) if (registry.has(name)) registry.isolate(name);
    if (isolated.length) options.logger.warn({ event: 'breaker.isolated', names: isolated }, `circuit breakers held isolated by the deployment: ${isolated.join(', ')}`);
    // 'ready' again: the connection came back (and ioredis subscribed again).
    const onReady = () => void fleet.catchUp();
    options.subscriber.on('ready', onReady);
    fleet.listeners.push(['ready', onReady]);
    fleet.timer = setInterval(() => void fleet.catchUp(), options.catchUpMs ?? 30_000);
    fleet.timer.unref();
    return fleet;
  }

  /** The isolated set and the number of the last action, read together. */
  private async readDeployment(): Promise<{ isolated: string[]; seq: number }> {
    const { publisher, isolatedKey } = this.options;
    const [seq, isolated] = (await publisher.eval(READ_SCRIPT, 2, isolatedKey, `${isolatedKey}:seq`)) as [number, string[]];
    return { isolated, seq };
  }

  /** When the deployment acted since the last action seen here, makes each breaker's isolation match the set. */
  private async catchUp(): Promise<void> {
    if (this.closed) return;
    let read: { isolated: string[]; seq: number };
    try {
      read = await this.readDeployment();
    } catch {
      return; // Redis unreachable: the next look finds out
    }
    if (this.closed || read.seq <= this.seen) return;
    this.seen = read.seq;
    for (const name of this.registry.names()) {
      // Messages up to read.seq are in the set already: one of them arriving late is stale.
      if (read.seq > (this.applied.get(name) ?? 0)) this.applied.set(name, read.seq);
      const held = read.isolated.includes(name);
      const isolatedHere = this.registry.get(name).snapshot().state === 'ISOLATED';
      if (held === isolatedHere) continue;
      const action: Action = held ? 'isolate' : 'reset';
      this.apply(action, name);
      this.options.logger.warn({ event: `breaker.${action}`, breaker: name, from: 'catch-up' }, `circuit breaker ${name}: ${action} missed while the control channel was down, applied now`);
    }
  }

  private receive(text: string): void {
    let message: z.output<typeof messageSchema>;
    try {
      message = messageSchema.parse(JSON.parse(text));
    } catch {
      return;
    }
    if (message.origin === this.options.origin || !this.registry.has(message.name)) return;
    if (message.seq !== undefined && !this.newer(message.name, message.seq)) return;
    if (message.seq !== undefined) this.seen = Math.max(this.seen, message.seq);
    this.apply(message.action, message.name);
    this.options.logger.warn({ event: `breaker.${message.action}`, breaker: message.name, from: message.origin }, `circuit breaker ${message.name}: ${message.action} from ${message.origin}`);
  }

  /** Whether `seq` is the newest action on `name` seen here; it becomes the last applied if so. */
  private newer(name: string, seq: number): boolean {
    if (seq <= (this.applied.get(name) ?? 0)) return false;
    this.applied.set(name, seq);
    return true;
  }

  private apply(action: Action, name: string): BreakerSnapshot {
    return action === 'reset' ? this.registry.reset(name) : this.registry.isolate(name);
  }

  /**
   * Records `action` for processes started later and publishes it to the rest of the fleet in one
   * Redis step, then applies it here unless an action of another process on the same breaker came
   * after it in Redis (concurrent isolate and reset end the same way in every process and the set).
   */
  async act(action: Action, name: string): Promise<FleetAnswer> {
    this.registry.get(name); // NOT_FOUND before anything is published
    const { publisher, isolatedKey, channel, origin } = this.options;
    let seq: number;
    let reached: number;
    try {
      [seq, reached] = (await publisher.eval(ACT_SCRIPT, 2, isolatedKey, `${isolatedKey}:seq`, action, name, origin, channel)) as [number, number];
    } catch (err) {
      this.apply(action, name);
      throw new WcagaiError('REDIS_UNAVAILABLE', `circuit breaker ${name}: ${action} applied in this process only; it could not be published to the fleet: ${(err as Error).message}`, { cause: err });
    }
    this.seen = Math.max(this.seen, seq);
    const breaker = this.newer(name, seq) ? this.apply(action, name) : this.registry.get(name).snapshot();
    this.options.logger.warn({ event: `breaker.${action}`, breaker: name, reached }, `circuit breaker ${name}: ${action} (published to ${reached} subscriber(s))`);
    // The publisher's own subscription is among those reached.
    return { name, breaker, reached: Math.max(0, reached - 1) };
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    for (const [event, listener] of this.listeners.splice(0)) this.options.subscriber.off(event, listener);
    await this.options.subscriber.unsubscribe(this.options.channel).catch(() => undefined);
  }
}
