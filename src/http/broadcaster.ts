/** One computed value and its JSON text, shared by every client. */
export interface Frame<T> {
  value: T;
  text: string;
  /** Epoch ms when it was computed. */
  at: number;
}

export interface BroadcasterOptions {
  /** One computation per interval however many subscribers (default 1 s). */
  intervalMs?: number;
  onError?: (err: unknown) => void;
  now?: () => number;
}

/**
 * Computes a value once per interval while anyone listens and hands the same frame (serialized
 * once) to every subscriber. It starts with the first subscriber and stops with the last, so an
 * unwatched server does no work; a computation still running when the next is due is not doubled.
 */
export class Broadcaster<T> {
  private readonly listeners = new Set<(frame: Frame<T>) => void>();
  private timer: NodeJS.Timeout | null = null;
  private inflight: Promise<Frame<T>> | null = null;
  private last: Frame<T> | null = null;
  private readonly intervalMs: number;
  private readonly now: () => number;
  /** Computations started so far. */
  computations = 0;

  constructor(
    private readonly compute: () => Promise<T>,
    private readonly options: BroadcasterOptions = {},
  ) {
    this.intervalMs = options.intervalMs ?? 1_000;
    this.now = options.now ?? Date.now;
  }

  get subscribers(): number {
    return this.listeners.size;
  }

  get running(): boolean {
    return this.timer !== null;
  }

  /** Adds a listener; it gets the latest frame at once when that is fresh. Returns the unsubscriber. */
  subscribe(listener: (frame: Frame<T>) => void): () => void {
    this.listeners.add(listener);
    if (!this.timer) {
      this.timer = setInterval(() => void this.tick(), this.intervalMs);
      this.timer.unref();
    }
    if (this.last && this.now() - this.last.at < this.intervalMs) listener(this.last);
    else void this.tick();
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.stop();
    };
  }

  /** A frame at most `maxAgeMs` old: the latest, the one being computed, or a new one (for polling clients). */
  current(maxAgeMs = this.intervalMs): Promise<Frame<T>> {
    if (this.last && this.now() - this.last.at < maxAgeMs) return Promise.resolve(this.last);
    return this.inflight ?? this.run();
  }

  private async tick(): Promise<void> {
    if (this.inflight) return;
    try {
      const frame = await this.run();
      for (const l of this.listeners) l(frame);
    } catch (err) {
      this.options.onError?.(err);
    }
  }

  private run(): Promise<Frame<T>> {
    this.computations++;
    const started = this.compute().then((value) => {
      const frame = { value, text: JSON.stringify(value), at: this.now() };
      this.last = frame;
      return frame;
    });
    this.inflight = started.finally(() => {
      this.inflight = null;
    });
    return this.inflight;
  }

  /** Stops computing (subscribers stay; a new subscribe restarts it). */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
