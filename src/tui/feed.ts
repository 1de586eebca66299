import type { Snapshot } from '../domain/snapshot.js';
import { networkMessage, problemOf, type AdminClient } from './client.js';
import { SseParser } from './sse.js';

/** How `top` is connected to the server right now. */
export type Connection =
  | { kind: 'connecting'; since: number }
  | { kind: 'live'; via: 'stream' | 'poll'; since: number }
  /** Unreachable or failing: the last snapshot stays on screen. */
  | { kind: 'down'; since: number; reason: string; retryAt: number; attempts: number }
  | { kind: 'unauthorized'; since: number; reason: string; retryAt: number };

export interface FeedState {
  snapshot: Snapshot | null;
  /** When the shown snapshot arrived (client clock). */
  receivedAt: number | null;
  connection: Connection;
}

export interface FeedOptions {
  client: AdminClient;
  /** Reconnection delays: doubled per failure from `initialMs` up to `maxMs`, with ±20% jitter. */
  backoff?: { initialMs: number; maxMs: number };
  /** Polling interval when the stream is unavailable. */
  pollMs?: number;
  /** No byte for this long on an open stream: reconnect (the server sends one snapshot a second). */
  stallMs?: number;
  /** While polling, try the stream again this often. */
  streamRetryMs?: number;
  now?: () => number;
}

type Outcome = { ok: true } | { ok: false; status: number; reason: string; unsupported?: boolean; received?: number };

/**
 * Keeps the latest snapshot of a server: reads GET /admin/events (server-sent events, parsed
 * here), falls back to polling GET /admin/snapshot, and on any failure keeps the last snapshot,
 * reports why, and reconnects with backoff. Never throws: every failure becomes state.
 */
export class SnapshotFeed {
  private state: FeedState;
  private readonly listeners = new Set<(state: FeedState) => void>();
  private controller: AbortController | null = null;
  private stopped = true;
  private wake: (() => void) | null = null;
  private readonly now: () => number;
  private readonly initialMs: number;
  private readonly maxMs: number;
  private retryHintMs: number | null = null;

  constructor(private readonly options: FeedOptions) {
    this.now = options.now ?? Date.now;
    this.initialMs = options.backoff?.initialMs ?? 500;
    this.maxMs = options.backoff?.maxMs ?? 15_000;
    this.state = { snapshot: null, receivedAt: null, connection: { kind: 'connecting', since: this.now() } };
    options.client.signal?.addEventListener('abort', () => this.stop(), { once: true });
  }

  get current(): FeedState {
    return this.state;
  }

  subscribe(listener: (state: FeedState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    void this.loop();
  }

  stop(): void {
    this.stopped = true;
    this.controller?.abort();
    this.wake?.();
  }

  /** Skips the wait of a pending reconnection. */
  retryNow(): void {
    this.wake?.();
  }

  private set(next: Partial<FeedState>): void {
    this.state = { ...this.state, ...next };
    for (const l of this.listeners) l(this.state);
  }

  private receive(snapshot: Snapshot, via: 'stream' | 'poll'): void {
    const c = this.state.connection;
    const connection = c.kind === 'live' && c.via === via ? c : { kind: 'live' as const, via, since: this.now() };
    this.set({ snapshot, receivedAt: this.now(), connection });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    }).then(() => {
      this.wake = null;
    });
  }

  private async loop(): Promise<void> {
    let mode: 'stream' | 'poll' = 'stream';
    let pollingSince = 0;
    let failures = 0;
    while (!this.stopped) {
      let outcome: Outcome;
      try {
        outcome = mode === 'stream' ? await this.stream() : await this.poll();
      } catch (err) {
        outcome = { ok: false, status: 0, reason: networkMessage(err, this.options.client.base) };
      }
      if (this.stopped) return;
      if (outcome.ok) {
        failures = 0;
        if (mode === 'poll') {
          if (this.now() - pollingSince >= (this.options.streamRetryMs ?? 30_000)) mode = 'stream';
          else await this.sleep(this.options.pollMs ?? 1_000);
        }
        continue;
      }
      if (mode === 'stream' && outcome.unsupported) {
        mode = 'poll';
        pollingSince = this.now();
        continue;
      }
      // A stream that delivered before it broke starts the backoff over.
      if (outcome.received) failures = 0;
      failures++;
      // A server that answers but whose stream keeps failing (a buffering proxy…): poll instead.
      if (mode === 'stream' && failures >= 2 && outcome.status >= 500) {
        mode = 'poll';
        pollingSince = this.now();
      }
      const base = Math.min(this.maxMs, Math.max(this.retryHintMs ?? 0, this.initialMs * 2 ** (failures - 1)));
      const delay = Math.round(base * (0.8 + Math.random() * 0.4));
      const prev = this.state.connection;
      const retryAt = this.now() + delay;
      if (outcome.status === 401) {
        this.set({ connection: { kind: 'unauthorized', since: prev.kind === 'unauthorized' ? prev.since : this.now(), reason: outcome.reason, retryAt } });
      } else {
        const since = prev.kind === 'down' ? prev.since : this.now();
        this.set({ connection: { kind: 'down', since, reason: outcome.reason, retryAt, attempts: failures } });
      }
      await this.sleep(delay);
      if (mode === 'poll' && this.state.connection.kind !== 'live') mode = failures % 3 === 0 ? 'stream' : mode;
    }
  }

  private async poll(): Promise<Outcome> {
    const { client } = this.options;
    let res: Response;
    try {
      res = await client.fetch(`${client.base}/admin/snapshot`, { headers: client.headers({ accept: 'application/json' }), signal: client.timeout(5_000) });
    } catch (err) {
      return { ok: false, status: 0, reason: networkMessage(err, this.options.client.base) };
    }
    if (!res.ok) {
      const problem = await problemOf(res, 'GET /admin/snapshot');
      return { ok: false, status: res.status, reason: problem.message };
    }
    this.receive((await res.json()) as Snapshot, 'poll');
    return { ok: true };
  }

  private async stream(): Promise<Outcome> {
    const { client } = this.options;
    const controller = new AbortController();
    this.controller = controller;
    const stallMs = this.options.stallMs ?? 10_000;
    let stall: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(stall);
      stall = setTimeout(() => controller.abort(new Error(`no data for ${Math.round(stallMs / 1000)} s`)), stallMs);
    };
    let received = 0;
    try {
      arm();
      let res: Response;
      try {
        res = await client.fetch(`${client.base}/admin/events`, { headers: client.headers({ accept: 'text/event-stream' }), signal: controller.signal });
      } catch (err) {
        return { ok: false, status: 0, reason: controller.signal.aborted && !this.stopped ? String((controller.signal.reason as Error)?.message ?? 'aborted') : networkMessage(err, this.options.client.base) };
      }
      if (!res.ok) {
        const problem = await problemOf(res, 'GET /admin/events');
        // An older server without the stream: poll its snapshot route instead.
        return { ok: false, status: res.status, reason: problem.message, unsupported: res.status === 404 || res.status === 405 || res.status === 406 };
      }
      if (!/^text\/event-stream/i.test(res.headers.get('content-type') ?? '') || !res.body) {
        await res.body?.cancel().catch(() => undefined);
        return { ok: false, status: res.status, reason: 'not an event stream', unsupported: true };
      }
      const parser = new SseParser({
        onEvent: (event) => {
          if (event.event !== 'snapshot') return;
          try {
            const snapshot = JSON.parse(event.data) as Snapshot;
            received++;
            this.receive(snapshot, 'stream');
          } catch {
            // a torn or foreign event: the next one replaces it
          }
        },
        onRetry: (ms) => (this.retryHintMs = ms),
      });
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          arm();
          parser.push(decoder.decode(value, { stream: true }));
        }
      } catch (err) {
        if (this.stopped) return { ok: true };
        const reason = controller.signal.aborted ? String((controller.signal.reason as Error)?.message ?? 'aborted') : networkMessage(err, this.options.client.base);
        return { ok: false, status: 0, reason: received ? `stream lost: ${reason}` : reason, received };
      } finally {
        reader.releaseLock();
      }
      return { ok: false, status: 0, reason: 'the server closed the stream', received };
    } finally {
      clearTimeout(stall);
      controller.abort();
      if (this.controller === controller) this.controller = null;
    }
  }
}
