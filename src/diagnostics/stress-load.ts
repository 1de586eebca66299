import autocannon from 'autocannon';
import type { Mix, RequestKind, Stage } from './scenario.js';
import { REQUEST_KINDS } from './scenario.js';
import type { StressCollector } from './stress-collector.js';

/** Smooth weighted round robin: deterministic, and proportional over any window. */
export class WeightedRotation<T> {
  private readonly items: Array<{ value: T; weight: number; current: number }>;
  private readonly total: number;

  constructor(entries: ReadonlyArray<readonly [T, number]>) {
    this.items = entries.filter(([, w]) => w > 0).map(([value, weight]) => ({ value, weight, current: 0 }));
    if (this.items.length === 0) throw new RangeError('nothing to rotate over: every weight is 0');
    this.total = this.items.reduce((s, i) => s + i.weight, 0);
  }

  next(): T {
    let best = this.items[0]!;
    for (const item of this.items) {
      item.current += item.weight;
      if (item.current > best.current) best = item;
    }
    best.current -= this.total;
    return best.value;
  }
}

export interface LoadPlan {
  stages: Stage[];
  /** Absolute page URLs with their weights. */
  pages: ReadonlyArray<{ url: string; weight: number }>;
  waitSeconds: number;
  timeoutMs: number;
  /** Hard bound on the whole load phase. */
  maxDurationMs: number;
  cacheBust: boolean;
  scanOptions: Record<string, unknown>;
  /** Tags cache-busting parameters, so two runs never share a URL. */
  runId: string;
}

export interface LoadTarget {
  baseUrl: string;
  /** Sent with every request (Authorization for --token). */
  headers: Record<string, string>;
}

type Context = { kind?: RequestKind; t0?: number };

/** Builds each request as it is sent: kind from the stage's mix, the next page, a fresh URL. */
function requestFactory(mix: Mix, plan: LoadPlan, target: LoadTarget, collector: StressCollector, nextUrl: () => string): autocannon.Request {
  const kinds = new WeightedRotation(REQUEST_KINDS.map((k) => [k, mix[k]] as const));
  const json = { ...target.headers, 'content-type': 'application/json' };
  return {
    method: 'GET',
    path: '/health',
    setupRequest: (req, context) => {
      const ctx = context as Context;
      let kind = kinds.next();
      const id = kind === 'status' ? collector.pickId() : undefined;
      if (kind === 'status' && !id) kind = 'health';
      ctx.kind = kind;
      ctx.t0 = performance.now();
      collector.onSent(kind);
      if (kind === 'scan' || kind === 'enqueue') {
        req.method = 'POST';
        req.path = '/api/scans';
        req.headers = kind === 'scan' ? { ...json, prefer: `wait=${plan.waitSeconds}` } : json;
        req.body = JSON.stringify({ ...plan.scanOptions, url: nextUrl() });
      } else {
        req.method = 'GET';
        req.path = kind === 'status' ? `/api/scans/${encodeURIComponent(id!)}` : '/health';
        req.headers = { ...target.headers };
        req.body = undefined;
      }
      return req;
    },
    onResponse: (status, body, context, headers) => {
      const ctx = context as Context;
      collector.onResponse({ kind: ctx.kind ?? 'health', status, body: body ?? '', headers: (headers ?? {}) as Record<string, string>, clientMs: performance.now() - (ctx.t0 ?? performance.now()) });
    },
  };
}

/** Every stage's connections from autocannon, bounded in time; resolves when all have stopped. */
export async function runLoad(plan: LoadPlan, target: LoadTarget, collector: StressCollector, signal?: AbortSignal): Promise<{ durationMs: number }> {
  const pages = new WeightedRotation(plan.pages.map((p) => [p.url, p.weight] as const));
  let n = 0;
  const nextUrl = () => {
    const url = pages.next();
    if (!plan.cacheBust) return url;
    const u = new URL(url);
    u.searchParams.set('wcagai_stress', `${plan.runId}-${++n}`);
    return u.href;
  };

  const started = performance.now();
  const instances: autocannon.Instance[] = [];
  const pending = new Map<NodeJS.Timeout, () => void>();
  let stopped = false;
  const stopAll = () => {
    stopped = true;
    // Stages not started yet never will be.
    for (const [timer, resolve] of pending) {
      clearTimeout(timer);
      resolve();
    }
    pending.clear();
    for (const i of instances) i.stop();
  };
  signal?.addEventListener('abort', stopAll, { once: true });
  // Stopped before it began (a signal while the stack started): no stage starts.
  if (signal?.aborted) stopAll();

  const runs = plan.stages.map(
    (stage) =>
      new Promise<void>((resolve, reject) => {
        if (stopped) return resolve();
        const start = () => {
          if (stopped) return resolve();
          try {
            launch();
          } catch (err) {
            reject(err instanceof Error ? err : new Error(String(err)));
          }
        };
        const launch = () => {
          const instance = autocannon(
            {
              url: target.baseUrl,
              connections: stage.connections,
              ...(stage.amount !== null ? { amount: stage.amount } : { duration: Math.max(0.001, (stage.durationMs ?? 0) / 1_000) }),
              timeout: Math.max(1, Math.ceil(plan.timeoutMs / 1_000)),
              // A target that refuses every connection would otherwise be retried in a tight loop.
              bailout: Math.max(1_000, stage.connections * 50),
              requests: [requestFactory(stage.mix, plan, target, collector, nextUrl)],
            },
            (err) => (err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve()),
          );
          instance.on('response', (_client, _status, _bytes, ms) => collector.onLatency(ms));
          instance.on('reqError', (err) => collector.onError(err));
          instances.push(instance);
        };
        if (stage.startMs > 0) {
          const timer = setTimeout(() => {
            pending.delete(timer);
            start();
          }, stage.startMs);
          pending.set(timer, resolve);
        } else start();
      }),
  );

  // Whatever the stages say, the load ends by maxDurationMs; a stage that does not wind down within 10 s more is left behind.
  let guard: NodeJS.Timeout | undefined;
  const bounded = new Promise<void>((resolve) => {
    guard = setTimeout(() => {
      stopAll();
      guard = setTimeout(resolve, 10_000);
    }, plan.maxDurationMs);
  });
  try {
    await Promise.race([Promise.all(runs), bounded]);
  } finally {
    clearTimeout(guard);
    stopAll();
    signal?.removeEventListener('abort', stopAll);
  }
  return { durationMs: Math.round(performance.now() - started) };
}
