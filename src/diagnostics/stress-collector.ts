import { LatencyHistogram } from './histogram.js';
import { REQUEST_KINDS, type RequestKind } from './scenario.js';

/** One answered request as the load generator saw it. */
export interface ResponseRecord {
  kind: RequestKind;
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
  /** Client-side time from building the request to the end of the answer. */
  clientMs: number;
}

export interface ErrorSample {
  kind: RequestKind | 'socket';
  status: number | null;
  detail: string;
}

const MAX_KNOWN_IDS = 2_000;
const MAX_ERROR_SAMPLES = 8;

/** The parts of a scan view the collector reads. */
interface ScanBody {
  id?: unknown;
  status?: unknown;
  cached?: unknown;
  deduplicated?: unknown;
  createdAt?: unknown;
  finishedAt?: unknown;
  error?: { code?: unknown } | null;
}

function parseJson(body: string): ScanBody | null {
  if (!body || body[0] !== '{') return null;
  try {
    return JSON.parse(body) as ScanBody;
  } catch {
    return null;
  }
}

function header(headers: ResponseRecord['headers'], name: string): string | undefined {
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === name) return Array.isArray(v) ? v[0] : v;
  return undefined;
}

/**
 * Classifies every answer: failures (non-2xx other than admission rejections, socket errors,
 * timeouts) apart from rejections (503 with Retry-After); scan results and their end-to-end
 * durations; latencies by request kind.
 */
export class StressCollector {
  readonly latency = new LatencyHistogram();
  readonly scanDuration = new LatencyHistogram();
  /** Per kind: requests sent, answers received, their latencies. */
  readonly byKind: Record<RequestKind, { sent: number; requests: number; latency: LatencyHistogram }> = Object.fromEntries(
    REQUEST_KINDS.map((k) => [k, { sent: 0, requests: 0, latency: new LatencyHistogram() }]),
  ) as Record<RequestKind, { sent: number; requests: number; latency: LatencyHistogram }>;
  readonly statusCodes: Record<string, number> = {};
  readonly failureCodes: Record<string, number> = {};
  readonly errorSamples: ErrorSample[] = [];
  responses = 0;
  /** Non-2xx answers that are not admission rejections. */
  httpFailures = 0;
  rejected = 0;
  timeouts = 0;
  socketErrors = 0;
  scansCompleted = 0;
  scansFailed = 0;
  /** Prefer: wait requests answered 202: the scan outlived the wait. */
  waitExpired = 0;
  cachedAnswers = 0;
  deduplicated = 0;
  private readonly ids: string[] = [];
  private nextId = 0;
  private readonly finished = new Set<string>();
  /** The kind of the answer being recorded: autocannon reports its latency right after its body. */
  private lastKind: RequestKind = 'health';

  /** Requests sent so far. */
  get sent(): number {
    return REQUEST_KINDS.reduce((n, k) => n + this.byKind[k].sent, 0);
  }

  /** A request of this kind is being sent. */
  onSent(kind: RequestKind): void {
    this.byKind[kind].sent++;
  }

  /** Requests that got an answer or failed. */
  get attempts(): number {
    return this.responses + this.timeouts + this.socketErrors;
  }

  get failures(): number {
    return this.httpFailures + this.timeouts + this.socketErrors;
  }

  /** Failed requests over attempts, 0..1. */
  get errorRate(): number {
    return this.attempts === 0 ? 0 : this.failures / this.attempts;
  }

  get rejectedRate(): number {
    return this.attempts === 0 ? 0 : this.rejected / this.attempts;
  }

  /** A scan id this run has seen, rotating, for status reads. */
  pickId(): string | undefined {
    if (this.ids.length === 0) return undefined;
    const id = this.ids[this.nextId % this.ids.length];
    this.nextId++;
    return id;
  }

  private rememberId(id: string): void {
    if (this.ids.length < MAX_KNOWN_IDS) this.ids.push(id);
    else this.ids[Math.floor(Math.random() * MAX_KNOWN_IDS)] = id;
  }

  private sample(sample: ErrorSample): void {
    if (this.errorSamples.length < MAX_ERROR_SAMPLES && !this.errorSamples.some((s) => s.kind === sample.kind && s.status === sample.status)) this.errorSamples.push(sample);
  }

  /** A finished scan seen for the first time: its outcome and end-to-end duration. */
  private scanFinished(view: ScanBody, fallbackMs: number | null): void {
    const id = typeof view.id === 'string' ? view.id : null;
    if (id !== null) {
      if (this.finished.has(id)) return;
      this.finished.add(id);
    }
    if (view.status === 'completed') this.scansCompleted++;
    else {
      this.scansFailed++;
      const code = typeof view.error?.code === 'string' ? view.error.code : 'UNKNOWN';
      this.failureCodes[code] = (this.failureCodes[code] ?? 0) + 1;
    }
    const created = typeof view.createdAt === 'string' ? Date.parse(view.createdAt) : NaN;
    const done = typeof view.finishedAt === 'string' ? Date.parse(view.finishedAt) : NaN;
    if (Number.isFinite(created) && Number.isFinite(done) && done >= created) this.scanDuration.record(done - created);
    else if (fallbackMs !== null) this.scanDuration.record(fallbackMs);
  }

  onResponse(r: ResponseRecord): void {
    this.responses++;
    this.lastKind = r.kind;
    this.byKind[r.kind].requests++;
    this.statusCodes[String(r.status)] = (this.statusCodes[String(r.status)] ?? 0) + 1;
    if (r.status === 503 && header(r.headers, 'retry-after') !== undefined) {
      this.rejected++;
      return;
    }
    if (r.status < 200 || r.status >= 300) {
      this.httpFailures++;
      this.sample({ kind: r.kind, status: r.status, detail: r.body.slice(0, 300) });
      return;
    }
    if (r.kind === 'health') return;
    const view = parseJson(r.body);
    if (!view) return;
    if (typeof view.id === 'string' && r.kind !== 'status') this.rememberId(view.id);
    if (view.deduplicated === true) this.deduplicated++;
    const finished = view.status === 'completed' || view.status === 'failed';
    if (view.cached === true) {
      // A cached answer says nothing about how long scans take now.
      this.cachedAnswers++;
      return;
    }
    if (finished) this.scanFinished(view, r.kind === 'scan' ? r.clientMs : null);
    else if (r.kind === 'scan' && r.status === 202) this.waitExpired++;
  }

  /** The latency autocannon measured for the answer just recorded. */
  onLatency(ms: number): void {
    this.latency.record(ms);
    this.byKind[this.lastKind].latency.record(ms);
  }

  /** A socket error or a client-side timeout. */
  onError(err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    if (/timed out/i.test(message)) this.timeouts++;
    else {
      this.socketErrors++;
      this.sample({ kind: 'socket', status: null, detail: message.slice(0, 200) });
    }
  }
}
