import { CircuitState, type CircuitBreakerPolicy, type ConsecutiveBreaker } from 'cockatiel';
import { WcagaiError } from '../errors/catalogue.js';

export type BreakerState = 'CLOSED' | 'OPEN' | 'HALF_OPEN' | 'ISOLATED';

/** What /health/detailed, heartbeats and `wcagai breakers list` show of one breaker. */
export interface BreakerSnapshot {
  state: BreakerState;
  /** Consecutive failed calls counted by the breaker (0 after a success or a reset). */
  failures: number;
  lastFailureAt: string | null;
  /** Code and message of the last counted failure. */
  lastFailure: string | null;
  openedAt: string | null;
  /** How long the breaker stays open before it lets one trial call through. */
  halfOpenAfterMs: number;
}

export interface BreakerChange {
  name: string;
  from: BreakerState;
  to: BreakerState;
  /** 'call' for transitions driven by calls, else the operator action. */
  cause: 'call' | 'reset' | 'isolate';
}

const STATES: Record<CircuitState, BreakerState> = {
  [CircuitState.Closed]: 'CLOSED',
  [CircuitState.Open]: 'OPEN',
  [CircuitState.HalfOpen]: 'HALF_OPEN',
  [CircuitState.Isolated]: 'ISOLATED',
};

/** One cockatiel circuit breaker with the figures operators need and manual reset/isolate. */
export class ManagedBreaker {
  private lastFailureAt: number | null = null;
  private lastFailure: string | null = null;
  private openedAt: number | null = null;
  private isolation: { dispose(): void } | null = null;
  private state: BreakerState = 'CLOSED';
  private cause: BreakerChange['cause'] = 'call';
  /** Set while reset() passes through ISOLATED: listeners hear one change, not two. */
  private quiet = false;
  private resets = 0;
  private readonly listeners = new Set<(change: BreakerChange) => void>();

  constructor(
    readonly name: string,
    readonly policy: CircuitBreakerPolicy,
    private readonly counter: ConsecutiveBreaker,
    readonly halfOpenAfterMs: number,
  ) {
    policy.onFailure(({ handled, reason }) => {
      if (!handled) return;
      this.lastFailureAt = Date.now();
      const err = 'error' in reason ? (reason.error as Error & { code?: string }) : undefined;
      this.lastFailure = err ? `${err.code ?? err.name}: ${err.message}`.slice(0, 300) : 'failed';
    });
    policy.onBreak(() => {
      this.openedAt = Date.now();
    });
    policy.onReset(() => {
      this.openedAt = null;
    });
    policy.onStateChange((s) => {
      if (!this.quiet) this.moveTo(STATES[s]);
    });
  }

  private moveTo(to: BreakerState): void {
    const from = this.state;
    this.state = to;
    if (from !== to) for (const l of this.listeners) l({ name: this.name, from, to, cause: this.cause });
  }

  snapshot(): BreakerSnapshot {
    return {
      state: STATES[this.policy.state],
      failures: this.counter.state,
      lastFailureAt: this.lastFailureAt ? new Date(this.lastFailureAt).toISOString() : null,
      lastFailure: this.lastFailure,
      openedAt: this.openedAt ? new Date(this.openedAt).toISOString() : null,
      halfOpenAfterMs: this.halfOpenAfterMs,
    };
  }

  /**
   * Counts the resets: an attempt that started before one (such as a half-open trial in flight) is
   * not counted by the breaker when it fails, so it cannot open the breaker the operator closed.
   */
  get generation(): number {
    return this.resets;
  }

  /** Closes the breaker now and forgets its failure count (also ends an isolation and the attempts in flight). */
  reset(): void {
    this.resets++;
    this.counter.state = 0;
    if (this.policy.state === CircuitState.Closed) return;
    this.cause = 'reset';
    this.quiet = true;
    try {
      // cockatiel has no reset: a breaker isolated and released again comes back closed.
      const handle = this.isolation ?? this.policy.isolate();
      this.isolation = null;
      handle.dispose();
      this.counter.state = 0;
      this.openedAt = null;
    } finally {
      this.quiet = false;
      this.moveTo(STATES[this.policy.state]);
      this.cause = 'call';
    }
  }

  /** Holds the breaker open until reset: every call fails fast with CIRCUIT_OPEN. */
  isolate(): void {
    if (this.isolation) return;
    this.cause = 'isolate';
    try {
      this.isolation = this.policy.isolate();
      this.openedAt = Date.now();
    } finally {
      this.cause = 'call';
    }
  }

  /** Called on every state change; returns a disposer. */
  onChange(listener: (change: BreakerChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

/** Every breaker of this process by service name. */
export class BreakerRegistry {
  private readonly breakers = new Map<string, ManagedBreaker>();
  private readonly listeners = new Set<(change: BreakerChange) => void>();

  add(breaker: ManagedBreaker): ManagedBreaker {
    if (this.breakers.has(breaker.name)) throw new Error(`a breaker named ${breaker.name} is already registered`);
    this.breakers.set(breaker.name, breaker);
    breaker.onChange((change) => {
      for (const l of this.listeners) l(change);
    });
    return breaker;
  }

  names(): string[] {
    return [...this.breakers.keys()];
  }

  has(name: string): boolean {
    return this.breakers.has(name);
  }

  /** The breaker named `name`; NOT_FOUND (listing the known names) otherwise. */
  get(name: string): ManagedBreaker {
    const breaker = this.breakers.get(name);
    if (!breaker) throw new WcagaiError('NOT_FOUND', `no circuit breaker named "${name}"; known: ${this.names().join(', ')}`);
    return breaker;
  }

  snapshot(): Record<string, BreakerSnapshot> {
    return Object.fromEntries([...this.breakers].map(([name, b]) => [name, b.snapshot()]));
  }

  /** True when no breaker is OPEN or ISOLATED (a HALF_OPEN one is already letting a trial call through). */
  healthy(): boolean {
    return [...this.breakers.values()].every((b) => {
      const s = b.snapshot().state;
      return s !== 'OPEN' && s !== 'ISOLATED';
    });
  }

  reset(name: string): BreakerSnapshot {
    const breaker = this.get(name);
    breaker.reset();
    return breaker.snapshot();
  }

  isolate(name: string): BreakerSnapshot {
    const breaker = this.get(name);
    breaker.isolate();
    return breaker.snapshot();
  }

  /** Called on every state change of every breaker; returns a disposer. */
  onChange(listener: (change: BreakerChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
