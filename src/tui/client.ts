import { maskUrl } from '../config/secrets.js';
import type { Snapshot } from '../domain/snapshot.js';
import { forEachLimited } from '../domain/concurrency.js';

/** A server answer that is not a success, with what its problem document says. */
export class AdminApiError extends Error {
  constructor(
    message: string,
    /** HTTP status; 0 when the server could not be reached. */
    readonly status: number,
    readonly code: string,
  ) {
    super(message);
    this.name = 'AdminApiError';
  }
}

export interface AdminClientOptions {
  /** The server's base URL, e.g. http://127.0.0.1:8080. */
  url: string;
  token?: string | undefined;
  timeoutMs?: number;
  fetch?: typeof fetch;
  /** Aborting it ends every request of this client and of a feed using it at once (`top` quitting). */
  signal?: AbortSignal;
}

/** What an operator action did, for the status line. */
export interface ActionResult {
  ok: boolean;
  message: string;
}

/** Reads a problem+json answer into an AdminApiError. */
export async function problemOf(res: Response, what: string): Promise<AdminApiError> {
  let code = res.status === 401 ? 'UNAUTHORIZED' : res.status === 404 ? 'NOT_FOUND' : `HTTP_${res.status}`;
  let detail = `${what} answered ${res.status}`;
  try {
    const body = (await res.json()) as { code?: unknown; detail?: unknown };
    if (typeof body.code === 'string') code = body.code;
    if (typeof body.detail === 'string') detail = body.detail;
  } catch {
    // not a problem document
  }
  return new AdminApiError(detail, res.status, code);
}

/**
 * Why a port of `url` is refused before any connection: `by` (HTTP clients, browsers) will not
 * connect to it (the Fetch standard's "bad ports": 6000, 6666, 10080…), which no retry changes.
 */
export function refusedPortMessage(url: string | undefined, by: string): string {
  let port = '';
  try {
    port = url ? new URL(url).port : '';
  } catch {
    // not a URL: the port goes unnamed
  }
  return `${port ? `port ${port}` : 'its port'} is one that ${by} refuse to connect to (a "bad port" of the Fetch standard): choose another port`;
}

/** Whether fetch failed because it refuses the URL's port outright, saying only "bad port" (no connection was tried). */
export function isRefusedPort(err: unknown): boolean {
  const cause = (err as { cause?: { code?: string; message?: string } } | null)?.cause;
  return cause?.message === 'bad port' && cause.code === undefined;
}

/**
 * The message of a failed fetch: the socket error's code (ECONNREFUSED…) when there is one.
 * With `url` (the address fetched), a port fetch refuses says so with that port's number.
 */
export function networkMessage(err: unknown, url?: string): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError') return 'timed out';
  if (isRefusedPort(err)) return refusedPortMessage(url, 'HTTP clients');
  // fetch's refusal of a URL with user:password@ repeats the URL: its credentials are masked.
  return maskUrl(e?.cause?.code ?? e?.cause?.message ?? e?.message ?? String(err), '***');
}

/** The admin API calls `wcagai top` makes. Never loads React: `top --once` uses it alone. */
export class AdminClient {
  readonly base: string;

  constructor(private readonly options: AdminClientOptions) {
    this.base = options.url.replace(/\/+$/, '');
  }

  headers(extra: Record<string, string> = {}): Record<string, string> {
    return { ...(this.options.token ? { authorization: `Bearer ${this.options.token}` } : {}), ...extra };
  }

  get fetch(): typeof fetch {
    return this.options.fetch ?? fetch;
  }

  get signal(): AbortSignal | undefined {
    return this.options.signal;
  }

  /** A request's signal: aborted after `ms`, or with the client's signal. */
  timeout(ms: number): AbortSignal {
    const timeout = AbortSignal.timeout(ms);
    return this.options.signal ? AbortSignal.any([timeout, this.options.signal]) : timeout;
  }

  private async call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await this.fetch(`${this.base}${path}`, {
        method,
        headers: this.headers({ accept: 'application/json', ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }),
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: this.timeout(this.options.timeoutMs ?? 10_000),
      });
    } catch (err) {
      throw new AdminApiError(`cannot reach ${maskUrl(this.base, '***')}: ${networkMessage(err, this.base)}`, 0, 'CONNECTION_FAILED');
    }
    if (!res.ok) throw await problemOf(res, `${method} ${path}`);
    const text = await res.text();
    return (text ? JSON.parse(text) : undefined) as T;
  }

  snapshot(): Promise<Snapshot> {
    return this.call('GET', '/admin/snapshot');
  }

  private async act(run: () => Promise<string>): Promise<ActionResult> {
    try {
      return { ok: true, message: await run() };
    } catch (err) {
      const e = err as AdminApiError;
      return { ok: false, message: e.code && e.status !== 0 ? `${e.code}: ${e.message}` : e.message };
    }
  }

  retryDlq(id: string): Promise<ActionResult> {
    return this.act(async () => {
      const r = await this.call<{ jobId: string }>('POST', `/admin/dlq/retry/${encodeURIComponent(id)}`);
      return `${id} retried as scan ${r.jobId}`;
    });
  }

  /** Retries each entry by id (the bulk route takes a code, host or all, not a list), four at a time. */
  retryDlqMany(ids: readonly string[]): Promise<ActionResult> {
    return this.act(async () => {
      const failures = new Map<string, number>();
      let retried = 0;
      // A server gone or a token refused fails every later call alike: none is started.
      let hopeless = false;
      await forEachLimited(
        ids,
        4,
        async (id) => {
          try {
            await this.call('POST', `/admin/dlq/retry/${encodeURIComponent(id)}`);
            retried++;
          } catch (err) {
            const code = (err as AdminApiError).code ?? 'ERROR';
            failures.set(code, (failures.get(code) ?? 0) + 1);
            if (code === 'CONNECTION_FAILED' || code === 'UNAUTHORIZED') hopeless = true;
          }
        },
        () => hopeless,
      );
      const skipped = [...failures].map(([code, n]) => `${n} ${code}`).join(', ');
      if (retried === 0 && failures.size) throw new AdminApiError(`no entry retried (${skipped})`, 400, [...failures.keys()][0]!);
      return `retried ${retried} of ${ids.length} entries${skipped ? `; not retried: ${skipped}` : ''}`;
    });
  }

  resetBreaker(name: string): Promise<ActionResult> {
    return this.act(async () => {
      const r = await this.call<{ breaker?: { state?: string }; reached?: number }>('POST', `/admin/breakers/${encodeURIComponent(name)}/reset`);
      return `breaker ${name} reset (${r.breaker?.state ?? 'CLOSED'} here, ${r.reached ?? 0} other process(es) told)`;
    });
  }

  setPaused(paused: boolean): Promise<ActionResult> {
    return this.act(async () => {
      await this.call('POST', `/admin/queue/${paused ? 'pause' : 'resume'}`);
      return paused ? 'queue paused: workers take no new scans' : 'queue resumed';
    });
  }
}
