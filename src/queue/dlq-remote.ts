import { maskUrl } from '../config/secrets.js';
import type { DlqBulkRetryResult, DlqEntry, DlqFilter, DlqListQuery, DlqOperations, DlqPage, DlqRetryResult, DlqStats } from '../domain/dlq.js';
import { ERRORS, type ErrorCode, WcagaiError } from '../errors/catalogue.js';
import { isRefusedPort, networkMessage } from '../tui/client.js';

export interface RemoteDlqOptions {
  /** The server's base URL, e.g. http://127.0.0.1:8080. */
  url: string;
  /** ADMIN_TOKEN of that server. */
  token?: string;
  timeoutMs?: number;
  fetch?: typeof fetch;
}

/** The DLQ operations through a running server's admin API (`wcagai dlq --url`). */
export class RemoteDlq implements DlqOperations {
  private readonly base: string;

  constructor(private readonly options: RemoteDlqOptions) {
    this.base = options.url.replace(/\/+$/, '');
  }

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const doFetch = this.options.fetch ?? fetch;
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.options.token) headers.authorization = `Bearer ${this.options.token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await doFetch(`${this.base}${path}`, {
        method,
        headers,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 120_000),
      });
    } catch (err) {
      // A port fetch refuses outright fails as "fetch failed": its reason is given instead.
      const cause = isRefusedPort(err) ? networkMessage(err, this.base) : ((err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message);
      // A --url with user:password@ (fetch refuses it, repeating the URL): never printed.
      throw new WcagaiError('CONNECTION_FAILED', `cannot reach the wcagai server at ${maskUrl(this.base, '***')}: ${maskUrl(cause, '***')}`, { cause: err });
    }
    const text = await res.text();
    let json: unknown = undefined;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON: reported below
    }
    if (!res.ok) {
      const problem = (json ?? {}) as { code?: string; detail?: string };
      const code = (problem.code && problem.code in ERRORS ? problem.code : res.status === 404 ? 'NOT_FOUND' : 'INTERNAL') as ErrorCode;
      throw new WcagaiError(code, problem.detail ?? `${method} ${path} answered ${res.status}`);
    }
    // Something at that address answered, but not the wcagai API (a proxy's page, another service).
    if (json === undefined || json === null || typeof json !== 'object') {
      throw new WcagaiError('UPSTREAM_INVALID_RESPONSE', `${this.base} is not a wcagai server: ${method} ${path} answered ${res.status} without a JSON body`);
    }
    return json as T;
  }

  list(query: DlqListQuery): Promise<DlqPage> {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') params.set(k, String(v));
    const qs = params.toString();
    return this.call('GET', `/admin/dlq/jobs${qs ? `?${qs}` : ''}`);
  }

  get(id: string): Promise<DlqEntry> {
    return this.call('GET', `/admin/dlq/jobs/${encodeURIComponent(id)}`);
  }

  stats(): Promise<DlqStats> {
    return this.call('GET', '/admin/dlq/stats');
  }

  retry(id: string): Promise<DlqRetryResult> {
    return this.call('POST', `/admin/dlq/retry/${encodeURIComponent(id)}`);
  }

  retryMany(filter: DlqFilter): Promise<DlqBulkRetryResult> {
    return this.call('POST', '/admin/dlq/retry', filter);
  }

  async remove(id: string): Promise<void> {
    await this.call('DELETE', `/admin/dlq/jobs/${encodeURIComponent(id)}`);
  }

  purge(options: { olderThanMs: number }): Promise<{ removed: number }> {
    return this.call('POST', `/admin/dlq/purge?olderThan=${Math.floor(options.olderThanMs)}ms`);
  }
}
