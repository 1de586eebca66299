import { ERRORS, type ErrorCode, WcagaiError } from '../errors/catalogue.js';
import { hasUserInfo, maskUrl } from '../config/secrets.js';
import { networkMessage } from '../tui/client.js';

export interface WcagaiApiOptions {
  /** The server's base URL, e.g. http://127.0.0.1:8080 (WCAGAI_URL). */
  url: string;
  /** Bearer token: ADMIN_TOKEN for /admin paths, an API key for /api paths. */
  token?: string | undefined;
  timeoutMs?: number;
}

export interface ApiFieldError {
  field: string;
  message: string;
}

function fieldErrors(list: unknown[]): ApiFieldError[] {
  return list.flatMap((e) => {
    const { field, message } = (e ?? {}) as { field?: unknown; message?: unknown };
    return typeof field === 'string' ? [{ field, message: typeof message === 'string' ? message : 'refused' }] : [];
  });
}

/** The field errors of a problem answer `err` carries (see `WcagaiApi.call`), or none. */
export function apiFieldErrors(err: unknown): ApiFieldError[] {
  const errors = err instanceof WcagaiError ? err.details?.errors : undefined;
  return Array.isArray(errors) ? (errors as ApiFieldError[]) : [];
}

/** A running wcagai server's HTTP API, for the CLI's remote commands (breakers, prospect). */
export class WcagaiApi {
  private readonly base: string;

  constructor(private readonly options: WcagaiApiOptions) {
    this.base = options.url.replace(/\/+$/, '');
  }

  /** Calls `path`; a problem answer becomes a WcagaiError with the server's code and detail. */
  async call<T>(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.options.token) headers.authorization = `Bearer ${this.options.token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(`${this.base}${path}`, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}), signal: AbortSignal.timeout(this.options.timeoutMs ?? 30_000) });
    } catch (err) {
      // fetch says only "fetch failed"; its cause names what happened (ECONNREFUSED, a port fetch refuses, …).
      const inner = (err as { cause?: { code?: string; message?: string } }).cause;
      const cause = inner ? networkMessage(err, this.base) : (err as Error).message;
      // --url or WCAGAI_URL may hold credentials (and fetch's message repeats the URL): never printed.
      const shown = maskUrl(this.base, '***');
      if (hasUserInfo(this.base)) {
        throw new WcagaiError('USAGE', `the wcagai server URL ${shown} holds a user name or password, which is never sent: drop it; the server takes a bearer token (--token or ADMIN_TOKEN; for prospect --api-key or API_KEYS)`, { cause: err });
      }
      throw new WcagaiError('CONNECTION_FAILED', `cannot reach the wcagai server at ${shown}: ${maskUrl(cause, '***')}`, { cause: err });
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (!res.ok) {
      const problem = (json ?? {}) as { code?: string; detail?: string; errors?: unknown };
      const code = (problem.code && problem.code in ERRORS ? problem.code : res.status === 404 ? 'NOT_FOUND' : 'INTERNAL') as ErrorCode;
      // The problem's field errors (`urls[3]`: why that URL was refused) go with it, for callers that act on them.
      const errors = Array.isArray(problem.errors) ? fieldErrors(problem.errors) : [];
      throw new WcagaiError(code, `${method} ${path}: ${problem.detail ?? `answered ${res.status}`}`, { details: { httpStatus: res.status, ...(errors.length ? { errors } : {}) } });
    }
    if (json === undefined) throw new WcagaiError('INTERNAL', `${method} ${path} answered ${res.status} without JSON`);
    return json as T;
  }
}
