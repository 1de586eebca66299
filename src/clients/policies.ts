import {
  BrokenCircuitError,
  BulkheadRejectedError,
  circuitBreaker,
  CircuitState,
  ConsecutiveBreaker,
  handleWhen,
  IsolatedCircuitError,
  retry,
  TaskCancelledError,
  timeout,
  TimeoutStrategy,
  type CircuitBreakerPolicy,
  type IBackoff,
  type IRetryBackoffContext,
  type RetryPolicy,
  type TimeoutPolicy,
} from 'cockatiel';
import type { Logger } from 'pino';
import { WcagaiError } from '../errors/catalogue.js';
import { Bulkhead } from './bulkhead.js';
import { UpstreamError } from './http.js';
import { TokenBucket } from './rate-limit.js';
import { ManagedBreaker } from './registry.js';

/** The resilience settings of one external service. */
export interface PolicySettings {
  /** Deadline of one attempt. */
  timeoutMs: number;
  /** Tries of one call, the first included. */
  attempts: number;
  /** Delay before the first retry; doubles on each retry, with jitter. */
  backoffMs: number;
  /** Longest delay between two attempts (a longer Retry-After is not waited for: the call fails). */
  maxBackoffMs: number;
  /** Consecutive failed attempts that open the breaker. */
  breakerFailures: number;
  /** How long the breaker stays open before one trial call goes through. */
  halfOpenAfterMs: number;
  /** Calls in flight at once; more wait in a queue of `queue` places, then fail fast. */
  concurrency: number;
  queue: number;
  /**
   * Client-side rate limit: at most this many attempts a second (retries included), spread evenly;
   * unset for none. The wait for a turn does not count towards `timeoutMs`.
   */
  ratePerSecond?: number | undefined;
}

export const DEFAULT_POLICY: PolicySettings = Object.freeze({
  timeoutMs: 10_000,
  attempts: 3,
  backoffMs: 250,
  maxBackoffMs: 30_000,
  breakerFailures: 5,
  halfOpenAfterMs: 30_000,
  concurrency: 4,
  queue: 100,
});

type RetryContext = IRetryBackoffContext<unknown>;

/** Exponential backoff with equal jitter; a Retry-After from the service replaces it (plus up to 10 %). */
function backoffFor(settings: PolicySettings, retryNo: number, context: RetryContext): IBackoff<RetryContext> {
  const err = 'error' in context.result ? context.result.error : undefined;
  const retryAfter = err instanceof UpstreamError ? err.retryAfterMs : undefined;
  const exponential = Math.min(settings.maxBackoffMs, settings.backoffMs * 2 ** (retryNo - 1));
  const duration = retryAfter !== undefined ? retryAfter * (1 + Math.random() * 0.1) : exponential / 2 + (Math.random() * exponential) / 2;
  return { duration: Math.round(duration), next: (next) => backoffFor(settings, retryNo + 1, next) };
}

/** Retried within the call: network errors, 5xx, and 429 unless its Retry-After is longer than we wait. */
function retryable(settings: PolicySettings) {
  return (err: Error) => err instanceof UpstreamError && err.transient && !(err.retryAfterMs !== undefined && err.retryAfterMs > settings.maxBackoffMs);
}

/** A signal aborted when either `a` or `b` is; `dispose` removes its listeners. */
function either(a: AbortSignal, b: AbortSignal): { signal: AbortSignal; dispose(): void } {
  if (a === b || b.aborted) return { signal: b.aborted ? b : a, dispose: () => undefined };
  if (a.aborted) return { signal: a, dispose: () => undefined };
  const controller = new AbortController();
  const abort = () => controller.abort();
  a.addEventListener('abort', abort, { once: true });
  b.addEventListener('abort', abort, { once: true });
  return {
    signal: controller.signal,
    dispose: () => {
      a.removeEventListener('abort', abort);
      b.removeEventListener('abort', abort);
    },
  };
}

/**
 * One service's policy: a bulkhead around retry (bounded, exponential backoff with jitter,
 * Retry-After honoured) around a circuit breaker (consecutive failures) around a timeout.
 * The breaker counts every failed attempt but a 429; its open state makes calls fail fast with
 * CIRCUIT_OPEN. With `ratePerSecond`, every attempt first waits for its turn.
 */
export class ServicePolicy {
  readonly breaker: ManagedBreaker;
  private readonly bulkhead: Bulkhead;
  private readonly retry: RetryPolicy;
  private readonly circuit: CircuitBreakerPolicy;
  private readonly timeout: TimeoutPolicy;
  private readonly rate: TokenBucket | null;
  /** Failures of attempts that started before an operator reset: the breaker does not count them. */
  private readonly staleFailures = new WeakSet<object>();

  constructor(
    readonly name: string,
    readonly settings: PolicySettings,
    /** Writes one line per call (its outcome, attempts and time), with the caller's request context. */
    private readonly logger?: Logger,
  ) {
    this.bulkhead = new Bulkhead(settings.concurrency, settings.queue);
    this.retry = retry(handleWhen(retryable(settings)), {
      maxAttempts: Math.max(0, settings.attempts - 1),
      backoff: { next: (context: RetryContext) => backoffFor(settings, 1, context) },
    });
    const counter = new ConsecutiveBreaker(settings.breakerFailures);
    this.circuit = circuitBreaker(
      handleWhen((err) => err instanceof UpstreamError && err.breakerFailure && !this.staleFailures.has(err)),
      { halfOpenAfter: settings.halfOpenAfterMs, breaker: counter },
    );
    this.timeout = timeout(settings.timeoutMs, TimeoutStrategy.Aggressive);
    this.rate = settings.ratePerSecond ? new TokenBucket(settings.ratePerSecond) : null;
    this.breaker = new ManagedBreaker(name, this.circuit, counter, settings.halfOpenAfterMs);
  }

  /** Called before each retry with the delay (for logs and tests). */
  onRetry(listener: (event: { attempt: number; delayMs: number; error?: Error }) => void): () => void {
    const d = this.retry.onRetry((e) => listener({ attempt: e.attempt, delayMs: e.delay, ...('error' in e ? { error: e.error } : {}) }));
    return () => d.dispose();
  }

  /** Runs `fn` (one attempt, given the attempt's signal) under the policy; the caller's `signal` cancels it all. */
  async execute<T>(fn: (signal: AbortSignal) => Promise<T>, signal?: AbortSignal): Promise<T> {
    const caller = signal ?? new AbortController().signal;
    const started = performance.now();
    let attempts = 0;
    const counted = (s: AbortSignal) => {
      attempts++;
      return fn(s);
    };
    const call = { running: 0 };
    const busy = () => call.running > 0;
    // Cancelled inside the bulkhead too, so a call given up while it waits for a retry frees its slot at once.
    // A call that waited in the bulkhead's queue runs in its own caller's async context (and forwards its
    // X-Request-ID): the bulkhead resumes it after an await, not from the call that freed the slot. It
    // leaves the queue as soon as its caller gives up.
    const run = () => this.untilCancelled(this.retry.execute(({ signal: s1 }) => this.circuit.execute(({ signal: s2 }) => this.guarded(counted, s2, caller, call), s1), caller), caller, busy);
    try {
      const value = await this.bulkhead.execute(run, caller);
      this.logger?.info({ event: 'upstream.call', service: this.name, attempts, ms: Math.round(performance.now() - started) }, `${this.name}: call answered`);
      return value;
    } catch (err) {
      const error = this.translate(err, caller);
      const code = error instanceof WcagaiError ? error.code : 'INTERNAL';
      // A call the caller gave up on (shutdown, its own deadline) is not the service's failure.
      const line = { event: 'upstream.failed', service: this.name, code, attempts, ms: Math.round(performance.now() - started) };
      if (caller.aborted) this.logger?.debug(line, (error as Error).message);
      else this.logger?.warn(line, (error as Error).message);
      throw error;
    }
  }

  /**
   * `work`, or a cancellation as soon as the caller gives up while none of the call's attempts is in
   * flight: cockatiel cuts short neither the wait before a retry (up to a Retry-After of
   * `maxBackoffMs`) nor that of a call queued behind a half-open trial. An
   * attempt in flight is aborted with the caller's signal and settles at once, so the breaker has
   * counted it when the caller hears. What is left of `work` starts no request (its signal is aborted).
   */
  private untilCancelled<T>(work: Promise<T>, caller: AbortSignal, busy: () => boolean): Promise<T> {
    if (caller.aborted) return work;
    return new Promise<T>((resolve, reject) => {
      const cancel = () => {
        if (!busy()) reject(new TaskCancelledError(`${this.name}: call cancelled`));
      };
      caller.addEventListener('abort', cancel, { once: true });
      work.then(resolve, reject).finally(() => caller.removeEventListener('abort', cancel));
    });
  }

  /** One attempt as the circuit breaker runs it; `call.running` counts the call's attempts in flight. */
  private async guarded<T>(fn: (signal: AbortSignal) => Promise<T>, signal: AbortSignal, caller: AbortSignal, call: { running: number }): Promise<T> {
    // cockatiel starts the half-open trial while the circuit still reads OPEN (HALF_OPEN just after);
    // every other attempt starts with it CLOSED.
    const trial = this.circuit.state !== CircuitState.Closed;
    // cockatiel's retry loop runs the next attempt after its wait even when the caller left meanwhile.
    if (caller.aborted && !trial) throw new TaskCancelledError(`${this.name}: call cancelled`);
    const generation = this.breaker.generation;
    // A call that waited behind a half-open trial is run by cockatiel without its signal: the caller's is added back.
    const both = either(signal, caller);
    call.running++;
    try {
      return await this.attempt(fn, both.signal, caller, trial);
    } catch (err) {
      // A reset since the attempt started: its failure is from before the reset and must not undo it.
      if (this.breaker.generation !== generation && typeof err === 'object' && err !== null) this.staleFailures.add(err);
      throw err;
    } finally {
      call.running--;
      both.dispose();
    }
  }

  private async attempt<T>(fn: (signal: AbortSignal) => Promise<T>, signal: AbortSignal, caller: AbortSignal, trial: boolean): Promise<T> {
    try {
      // Inside the breaker (an open breaker fails fast without taking a turn), outside the timeout.
      await this.rate?.take(signal);
      return await this.timeout.execute(({ signal: s }) => fn(s), signal);
    } catch (err) {
      if (err instanceof TaskCancelledError && !caller.aborted) {
        throw new UpstreamError('UPSTREAM_TIMEOUT', this.name, `${this.name}: no answer within ${this.settings.timeoutMs} ms`, { breakerFailure: true, cause: err });
      }
      // A half-open trial the caller gave up on proved nothing: counted as a failure, it keeps the
      // breaker open (cockatiel closes it on any error the breaker does not count).
      if (trial && caller.aborted) {
        throw new UpstreamError('UPSTREAM_TIMEOUT', this.name, `${this.name}: call cancelled during the half-open trial; the breaker stays open`, { breakerFailure: true, cause: err });
      }
      throw err;
    }
  }

  /** cockatiel's own errors as catalogue codes. */
  private translate(err: unknown, caller: AbortSignal): unknown {
    if (err instanceof WcagaiError) return err;
    if (err instanceof IsolatedCircuitError) {
      return new UpstreamError('CIRCUIT_OPEN', this.name, `${this.name}: circuit breaker isolated by an operator; calls fail until it is reset`, { cause: err });
    }
    if (err instanceof BrokenCircuitError) {
      const s = this.breaker.snapshot();
      return new UpstreamError('CIRCUIT_OPEN', this.name, `${this.name}: circuit breaker open after ${s.failures} consecutive failures (last: ${s.lastFailure ?? 'unknown'}); a trial call goes through ${Math.round(this.settings.halfOpenAfterMs / 1000)} s after it opened`, { cause: err });
    }
    if (err instanceof BulkheadRejectedError) {
      return new UpstreamError('UPSTREAM_RATE_LIMITED', this.name, `${this.name}: ${this.settings.concurrency} calls in flight and ${this.settings.queue} waiting; call refused`, { cause: err });
    }
    if (err instanceof TaskCancelledError || caller.aborted) {
      return new UpstreamError('UPSTREAM_TIMEOUT', this.name, `${this.name}: call cancelled`, { cause: err });
    }
    return err;
  }
}
