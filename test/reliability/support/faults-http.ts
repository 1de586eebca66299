/** One HTTP call a scenario made, and how it ended. */
export interface Call {
  /** The X-Request-ID sent, unique per call, so the server's log can be matched against it. */
  requestId: string;
  method: string;
  path: string;
  /** Date.now() when the call was made and when it ended. */
  startedAt: number;
  endedAt: number;
  /** The HTTP status, or undefined when no answer came (socket error, refused, client deadline). */
  status?: number;
  /** The parsed JSON body (problem details included). */
  json?: any;
  /** Why no answer came. */
  error?: string;
}

export interface CallOptions {
  body?: unknown;
  headers?: Record<string, string>;
  /** Client deadline of this call (default 60 s). */
  timeoutMs?: number;
}

/**
 * Every call a scenario makes to one server, kept so the scenario can count 5xx answers and calls
 * left unanswered, and match each against the server's log by its request id.
 */
export class HttpLedger {
  readonly calls: Call[] = [];
  private seq = 0;

  constructor(
    private base: string,
    private readonly label: string,
  ) {}

  /** Points later calls at another server (the same service restarted on a new port). */
  retarget(base: string): void {
    this.base = base;
  }

  async call(method: string, path: string, options: CallOptions = {}): Promise<Call> {
    const requestId = `${this.label}-${++this.seq}`;
    const call: Call = { requestId, method, path, startedAt: Date.now(), endedAt: 0 };
    this.calls.push(call);
    try {
      const res = await fetch(`${this.base}${path}`, {
        method,
        headers: { 'x-request-id': requestId, ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}), ...options.headers },
        ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
        signal: AbortSignal.timeout(options.timeoutMs ?? 60_000),
      });
      const text = await res.text();
      call.status = res.status;
      if (/json/.test(res.headers.get('content-type') ?? '')) call.json = JSON.parse(text);
    } catch (err) {
      const e = err as Error & { cause?: { code?: string; message?: string } };
      call.error = e.cause?.code ?? e.cause?.message ?? e.name ?? e.message;
    } finally {
      call.endedAt = Date.now();
    }
    return call;
  }

  get(path: string, options?: CallOptions): Promise<Call> {
    return this.call('GET', path, options);
  }

  post(path: string, body: unknown, options: Omit<CallOptions, 'body'> = {}): Promise<Call> {
    return this.call('POST', path, { ...options, body });
  }

  /** Answers with status >= 500, except those whose problem code is in `expected` (e.g. SHUTTING_DOWN). */
  serverErrors(expected: readonly string[] = []): Call[] {
    return this.calls.filter((c) => c.status !== undefined && c.status >= 500 && !expected.includes(String(c.json?.code)));
  }

  /** Calls that got no HTTP answer at all. */
  unanswered(): Call[] {
    return this.calls.filter((c) => c.status === undefined);
  }
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
