import type { Cluster, Redis } from 'ioredis';
import type { Logger } from 'pino';
import { z } from 'zod';
import { WcagaiError } from '../errors/catalogue.js';
import type { BreakerRegistry, BreakerSnapshot } from './registry.js';

const messageSchema = z.object({ action: z.enum(['reset', 'isolate']), name: z.string(), origin: z.string() });
type Action = z.output<typeof messageSchema>['action'];

export interface FleetOptions {
  /** A regular connection: publishes, and keeps the set of isolated breakers. */
  publisher: Redis | Cluster;
  /** A dedicated connection: once subscribed it can do nothing else. */
  subscriber: Redis | Cluster;
  /** Pub/sub channel of this deployment. */
  channel: string;
  /** Set of isolated breaker names, so processes started later isolate them too. */
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
    this.apply(message.action, message.name);
    this.options.logger.warn({ event: `breaker.${message.action}`, breaker: message.name, from: message.origin }, `circuit breaker ${message.name}: ${message.action} from ${message.origin}`);
  }

  private apply(action: Action, name: string): BreakerSnapshot {
    return action === 'reset' ? this.registry.reset(name) : this.registry.isolate(name);
  }

  /** Applies `action` here, records it for processes started later, and publishes it to the rest of the fleet. */
  async act(action: Action, name: string): Promise<FleetAnswer> {
    const breaker = this.apply(action, name);
    const { publisher, isolatedKey, channel, origin } = this.options;
    let reached: number;
    try {
      await (action === 'isolate' ? publisher.sadd(isolatedKey, name) : publisher.srem(isolatedKey, name));
      reached = await publisher.publish(channel, JSON.stringify({ action, name, origin }));
    } catch (err) {
      throw new WcagaiError('REDIS_UNAVAILABLE', `circuit breaker ${name}: ${action} applied in this process only; it could not be published to the fleet: ${(err as Error).message}`, { cause: err });
    }
    this.options.logger.warn({ event: `breaker.${action}`, breaker: name, reached }, `circuit breaker ${name}: ${action} (published to ${reached} subscriber(s))`);
    // The publisher's own subscription is among those reached.
    return { name, breaker, reached: Math.max(0, reached - 1) };
  }

  async close(): Promise<void> {
    await this.options.subscriber.unsubscribe(this.options.channel).catch(() => undefined);
  }
}
