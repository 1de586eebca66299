import { Cluster, Command, type Redis } from 'ioredis';
import { WcagaiError } from '../errors/catalogue.js';
import type { RedisClient } from './redis.js';

/** How often the gate asks Redis whether it answers, and how long an answer may take. */
export interface RedisGateOptions {
  /** Milliseconds between PINGs (default 250). One PING is out at a time. */
  intervalMs?: number;
  /** A PING without an answer after this many milliseconds shuts the gate (default 1500). */
  deadlineMs?: number;
  /** Told when the gate shuts (`open` false, with the reason) and when it opens again. */
  onChange?: (open: boolean, reason: string) => void;
  /**
   * A connection of its own to PING on (to the same Redis, fail-fast, ready). Without it the
   * PINGs go through the gated connection, where they wait behind any slow command of its own:
   * a script held for a second would then shut the gate although Redis answers everyone else.
   */
  probe?: RedisClient;
}

/** The state of one connection's gate (see gateRedis). */
export interface RedisGate {
  /** False while Redis is known not to answer: the connection's commands fail at once. */
  readonly open: boolean;
  /** Why the gate is shut; null while it is open. */
  readonly reason: string | null;
  /** Stops the PINGs and lets every command through again. */
  close(): void;
}

type Send = (command: Command, stream?: unknown, node?: unknown) => unknown;

const TIMED_OUT = 'Command timed out';

/**
 * A health gate on a fail-fast connection (the API's producer connection). A connection refused
 * or dropped fails its commands at once by itself (no offline queue); a Redis that hangs (a
 * stopped process, a network partition: the TCP connection stays open, nothing answers) does not,
 * and each command would wait its whole command timeout, one after the other. The gate learns of
 * a hang from a short periodic PING with its own deadline, or from a command that timed out, and
 * while it is shut every command of the connection fails at once with REDIS_UNAVAILABLE (503,
 * retry after 5 s), those already waiting for an answer included: a request answers 503 within a
 * second instead of after several command timeouts. A PING that answers opens the gate again.
 *
 * The gate sits in the connection's `sendCommand`, which every command, script, pipeline and
 * transaction goes through, so no caller has to ask it anything: it costs a set entry per command
 * and four PINGs a second, not a round trip per request. Commands ioredis sends while the
 * connection is not ready (its handshake, the ready check) are let through: ioredis fails the
 * others itself in that state.
 */
export function gateRedis(redis: RedisClient, options: RedisGateOptions = {}): RedisGate {
  const intervalMs = options.intervalMs ?? 250;
  const deadlineMs = options.deadlineMs ?? 1_500;
  const client = redis as unknown as { sendCommand: Send };
  const send: Send = client.sendCommand.bind(redis);
  // Commands sent and not answered yet: rejected together when the gate shuts.
  const waiting = new Set<Command>();
  let open = true;
  let reason: string | null = null;
  let probing = false;
  let closed = false;

  const unavailable = () => new WcagaiError('REDIS_UNAVAILABLE', `queue store unavailable: ${reason ?? 'Redis does not answer'}`, { details: { retryAfterSeconds: 5 } });

  const shut = (why: string) => {
    if (!open || closed) return;
    open = false;
    reason = why;
    const err = unavailable();
    // As ioredis's own command timeout does: the command stays in the connection's queue, so a
    // late reply still lines up with its command, and settles nothing.
    for (const command of waiting) command.reject(err);
    waiting.clear();
    options.onChange?.(false, why);
  };

  const reopen = () => {
    if (open || closed) return;
    const why = reason ?? '';
    open = true;
    reason = null;
    options.onChange?.(true, why);
  };

  const forget = (command: Command) => waiting.delete(command);
  client.sendCommand = (command, stream, node) => {
    if (!open && redis.status === 'ready') {
      command.reject(unavailable());
      return command.promise;
    }
    const sent = send(command, stream, node);
    waiting.add(command);
    command.promise.then(
      () => forget(command),
      (err: unknown) => {
        forget(command);
        if ((err as Error | undefined)?.message === TIMED_OUT) shut(`a command got no answer within its timeout`);
      },
    );
    return sent;
  };

  /** PING past the gate: on the probe connection when there is one, else the connection itself; every master of a Cluster. */
  const ping = (): Promise<unknown> => {
    const target = options.probe ?? redis;
    if (target instanceof Cluster) {
      const masters = target.nodes('master');
      return masters.length ? Promise.all(masters.map((node: Redis) => node.ping())) : Promise.reject(new Error('no Cluster master known'));
    }
    if (options.probe) return options.probe.ping();
    const command = new Command('ping', [], { replyEncoding: 'utf8' });
    send(command);
    return command.promise;
  };

  const probe = () => {
    if (probing || closed) return;
    if (redis.status !== 'ready') {
      shut(`connection ${redis.status}`);
      return;
    }
    probing = true;
    let answered = false;
    // One turn for I/O after the timer: after a stall of this process the reply that came in
    // meanwhile is read before the PING is judged unanswered.
    // A timer that fires late means this process was stalled (a long GC, a starved CPU): the PING
    // is judged again one deadline later rather than Redis blamed for our own delay.
    const judge = (armedAt: number) => {
      if (answered || closed) return;
      if (performance.now() - armedAt > deadlineMs * 1.5) {
        const rearmedAt = performance.now();
        const again = setTimeout(() => setImmediate(() => judge(rearmedAt)), deadlineMs);
        again.unref();
        return;
      }
      shut(`no answer to PING within ${deadlineMs} ms`);
    };
    const armedAt = performance.now();
    const deadline = setTimeout(() => setImmediate(() => judge(armedAt)), deadlineMs);
    deadline.unref();
    ping().then(
      () => {
        answered = true;
        probing = false;
        clearTimeout(deadline);
        reopen();
      },
      (err: unknown) => {
        answered = true;
        probing = false;
        clearTimeout(deadline);
        shut(`PING failed: ${(err as Error).message}`);
      },
    );
  };

  const timer = setInterval(probe, intervalMs);
  timer.unref();
  // A connection that is ready again (Redis restarted, a failover) is asked at once, not at the next tick.
  const onReady = () => probe();
  redis.on('ready', onReady);
  options.probe?.on('ready', onReady);

  return {
    get open() {
      return open;
    },
    get reason() {
      return reason;
    },
    close() {
      if (closed) return;
      closed = true;
      open = true;
      reason = null;
      clearInterval(timer);
      redis.off('ready', onReady);
      options.probe?.off('ready', onReady);
      client.sendCommand = send;
      waiting.clear();
    },
  };
}
