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
 * Returns { seq, subscribers reached }.
 */
const ACT_SCRIPT = `
local seq = redis.call('INCR', KEYS[2])
if ARGV[1] == 'isolate' then redis.call('SADD', KEYS[1], ARGV[2]) else redis.call('SREM', KEYS[1], ARGV[2]) end
local reached = redis.call('PUBLISH', ARGV[4], cjson.encode({ action = ARGV[1], name = ARGV[2], origin = ARGV[3], seq = seq }))
return { seq, reached }`;

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

  private constructor(
    private readonly registry: BreakerRegistry,
    private readonly options: FleetOptions,
  ) {}

  /** Subscribes, then isolates the breakers the deployment holds isolated. */
  static async connect(registry: BreakerRegistry, options: FleetOptions): Promise<BreakerFleet> {
    const fleet = new BreakerFleet(registry, options);
    options.subscriber.on('message', (channel: string, text: string) => {
      if (channel === options.channel) fleet.receive(text);
    });
    await options.subscriber.subscribe(options.channel);
    const isolated = await options.publisher.smembers(options.isolatedKey).catch(() => [] as string[]);
    for (const name of isolated) if (registry.has(name)) registry.isolate(name);
    if (isolated.length) options.logger.warn({ event: 'breaker.isolated', names: isolated }, `circuit breakers held isolated by the deployment: ${isolated.join(', ')}`);
    return fleet;
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
    const breaker = this.newer(name, seq) ? this.apply(action, name) : this.registry.get(name).snapshot();
    this.options.logger.warn({ event: `breaker.${action}`, breaker: name, reached }, `circuit breaker ${name}: ${action} (published to ${reached} subscriber(s))`);
    // The publisher's own subscription is among those reached.
    return { name, breaker, reached: Math.max(0, reached - 1) };
  }

  async close(): Promise<void> {
    await this.options.subscriber.unsubscribe(this.options.channel).catch(() => undefined);
  }
}
