import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { WcagaiError } from '../../errors/catalogue.js';

const digest = (secret: string) => createHash('sha256').update(secret).digest();

/**
 * Whether `given` is one of the secrets. Constant time: both sides are hashed (the secrets' digests
 * once, here), so neither length nor prefix leaks, and every secret is compared.
 */
export function secretMatcher(secrets: readonly string[]): (given: string) => boolean {
  const expected = secrets.map(digest);
  return (given) => {
    const d = digest(given);
    let found = false;
    for (const e of expected) found = timingSafeEqual(d, e) || found;
    return found;
  };
}

/** The bearer token of a request, if any. */
export function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  const m = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  return m?.[1];
}

/** The API key a request presents (Authorization: Bearer, or X-API-Key). */
export function presentedApiKey(request: FastifyRequest): string | undefined {
  const header = request.headers['x-api-key'];
  return bearerToken(request) ?? (typeof header === 'string' && header ? header : undefined);
}

export interface AuthOptions {
  adminToken?: string | undefined;
  apiKeys: readonly string[];
}

function unauthorized(what: string): WcagaiError {
  return new WcagaiError('UNAUTHORIZED', `${what}`, { details: { wwwAuthenticate: 'Bearer realm="wcagai"' } });
}

/**
 * True when a request targets `prefix` (`/admin`, `/api`) by any reading of its path: the route the
 * router matched, the raw path, or the path with %-escapes decoded. The router decodes escapes
 * before matching, so `/%61dmin/queue/pause` runs the `/admin/queue/pause` handler: a check on the
 * raw URL alone would let it through without a token.
 */
function under(paths: ReadonlyArray<string | undefined>, prefix: string): boolean {
  return paths.some((path) => path !== undefined && (path === prefix || path.startsWith(`${prefix}/`)));
}

/** The readings `under` checks: the route matched, the raw path, and (when it has an escape) the path decoded. */
function readingsOf(request: FastifyRequest): ReadonlyArray<string | undefined> {
  const q = request.url.indexOf('?');
  const raw = q === -1 ? request.url : request.url.slice(0, q);
  let decoded = raw;
  if (raw.includes('%')) {
    try {
      decoded = decodeURIComponent(raw);
    } catch {
      // a malformed escape: the raw path and the route decide
    }
  }
  return [request.routeOptions.url, raw, decoded];
}

/**
 * Access control: `/admin/*` needs the admin token (and does not exist without one: 404, never
 * open); `/api/*` needs an API key when API_KEYS is set. Health and metrics are handled elsewhere.
 */
export function authPlugin(app: FastifyInstance, options: AuthOptions): void {
  const isAdminToken = secretMatcher(options.adminToken ? [options.adminToken] : []);
  const isApiKey = secretMatcher(options.apiKeys);
  app.addHook('onRequest', (request, _reply, done) => {
    const paths = readingsOf(request);
    if (under(paths, '/admin')) {
      if (!options.adminToken) return done(new WcagaiError('NOT_FOUND', 'admin routes are disabled: set ADMIN_TOKEN to enable them'));
      // A token that was sent but is wrong is told apart from none at all: `--token` with a typo
      // must not read as if the flag had been lost (the answer says nothing of the right one).
      const token = bearerToken(request);
      if (!token) return done(unauthorized('admin routes need Authorization: Bearer <ADMIN_TOKEN>'));
      return done(isAdminToken(token) ? undefined : unauthorized("the bearer token is not this server's ADMIN_TOKEN"));
    }
    if (options.apiKeys.length && under(paths, '/api')) {
      const key = presentedApiKey(request);
      if (!key) return done(unauthorized('an API key is required: Authorization: Bearer <key> or X-API-Key: <key>'));
      if (!isApiKey(key)) return done(unauthorized("the API key is not one of this server's API_KEYS"));
    }
    done();
  });
}
