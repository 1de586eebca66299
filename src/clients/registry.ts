import { CircuitState, type CircuitBreakerPolicy, type ConsecutiveBreaker } from 'cockatiel';
import { WcagaiError } from '../errors/catalogue.js';

export type BreakerState = 'CLOSED' | 'OPEN' | 'HALF_OPEN' | 'ISOLATED';

/** What /health/detailed, heartbeats and `wcagai breakers list` show of one breaker. */
export interface BreakerSnapshot {
  /**
   * HALF_OPEN from the moment the breaker has been open for `halfOpenAfterMs` (the next call is let
   * through as a trial), whether or not a call has come since: an idle breaker does not read OPEN forever.
   */
  state: BreakerState;
  /** HALF_OPEN with its trial call in flight (false in every other state, and while HALF_OPEN awaits a call). */
  trialInFlight: boolean;
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
  /** 'call' for transitions driven by calls, 'timer' for OPEN -> HALF_OPEN once the open period is over, else the operator action. */
  cause: 'call' | 'timer' | 'reset' | 'isolate';
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
  /** Fires when the open period is over, to announce HALF_OPEN without waiting for a call. */
  private halfOpenTimer: NodeJS.Timeout | null = null;

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
      // cockatiel's own opening time (it lets a trial through from openedAt + halfOpenAfter on), else now.
      this.openedAt = this.cockatielOpenedAt() ?? Date.now();
    });
    policy.onReset(() => {
      this.openedAt = null;
    });
    policy.onStateChange((s) => {
      this.disarm();
      if (s === CircuitState.Open) this.arm();
      // OPEN -> HALF_OPEN was announced when the open period ended: the trial that starts now changes nothing shown.
      if (!this.quiet) this.moveTo(this.reported());
    });
  }

  private moveTo(to: BreakerState, cause = this.cause): void {
    const from = this.state;
    this.state = to;
    if (from !== to) for (const l of this.listeners) l({ name: this.name, from, to, cause });
  }

  /** When cockatiel opened the breaker (epoch ms), from its public state; null when it is not OPEN. */
  private cockatielOpenedAt(): number | null {
    const own = (this.policy.toJSON() as { ownState: { value: CircuitState; openedAt?: number } }).ownState;
    return own.value === CircuitState.Open && typeof own.openedAt === 'number' ? own.openedAt : null;
  }

  /**
   * The state shown: cockatiel's, except that an OPEN breaker whose open period is over reads
   * HALF_OPEN (cockatiel itself moves only when a call arrives, and lets that call through as the trial).
   */
  private reported(now = Date.now()): BreakerState {
    const state = this.policy.state;
    if (state !== CircuitState.Open) return STATES[state];
    const openedAt = this.cockatielOpenedAt();
    return openedAt !== null && now - openedAt >= this.halfOpenAfterMs ? 'HALF_OPEN' : 'OPEN';
  }

  /** Announces HALF_OPEN when the open period ends (no call is made: the next caller's call is the trial). */
  private arm(): void {
    const openedAt = this.cockatielOpenedAt();
    if (openedAt === null) return;
    const fire = () => {
      this.halfOpenTimer = null;
      if (this.policy.state !== CircuitState.Open || this.cockatielOpenedAt() !== openedAt) return;
      const left = openedAt + this.halfOpenAfterMs - Date.now();
      // A timer may fire a millisecond before the clock says the period is over.
      if (left > 0) return void (this.halfOpenTimer = setTimeout(fire, left).unref());
      this.moveTo('HALF_OPEN', 'timer');
    };
    this.halfOpenTimer = setTimeout(fire, Math.max(0, openedAt + this.halfOpenAfterMs - Date.now())).unref();
  }

  private disarm(): void {
    if (this.halfOpenTimer) clearTimeout(this.halfOpenTimer);
    this.halfOpenTimer = null;
  }

  snapshot(): BreakerSnapshot {
    return {
      state: this.reported(),
      trialInFlight: this.policy.state === CircuitState.HalfOpen,
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

  /** True when no breaker is OPEN or ISOLATED (a HALF_OPEN one lets the next call through as a trial, or already has). */
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
