/**
 * Log redaction: the value of every property named like a credential is replaced, at any depth,
 * before a line is written. Objects are copied only along the path to a secret, so a line
 * without one (nearly every line) costs a walk over its keys and nothing else.
 */

export const CENSOR = '[redacted]';

/** Property names whose values never reach a log line (compared lower-cased). */
export const SECRET_KEYS: ReadonlySet<string> = new Set([
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'x-api-key',
  'apikey',
  'api_key',
  'token',
  'password',
  'secret',
  'routing_key',
  'webhookurl',
  // Settings that hold credentials, wherever a configuration object is logged.
  'admin_token',
  'api_keys',
  'metrics_token',
  'sentry_dsn',
  'redis_url',
  'redis_sentinel_password',
  'ai_api_key',
  'apollo_api_key',
  'hubspot_token',
  'slack_webhook_url',
  'pagerduty_routing_key',
]);

/** Deeper than any line we write: a value below it is replaced, never written unchecked. */
const MAX_DEPTH = 8;
const TOO_DEEP = '[too deep]';
const CIRCULAR = '[Circular]';

function isSecretKey(key: string): boolean {
  return SECRET_KEYS.has(key) || SECRET_KEYS.has(key.toLowerCase());
}

/**
 * How a value is walked: plain objects, arrays and errors (their own enumerable fields reach the
 * line through the error serializer) at every depth; other objects (a class instance, a Fastify
 * request, a socket) only for their own field names, since walking into them would be slow and
 * circular, and most reach a line only through serializers that pick a few safe fields.
 */
function kindOf(value: unknown): 'deep' | 'shallow' | null {
  if (value === null || typeof value !== 'object') return null;
  if (Array.isArray(value) || value instanceof Error) return 'deep';
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto === Object.prototype || proto === null) return 'deep';
  // Bytes: a key per byte, and no names.
  return ArrayBuffer.isView(value) ? null : 'shallow';
}

/** A copy keeping the prototype (an error stays an error), its message and stack included. */
function shallowCopy(value: Record<string, unknown>): Record<string, unknown> {
  if (Array.isArray(value)) return [...value] as unknown as Record<string, unknown>;
  const copy = Object.create(Object.getPrototypeOf(value) as object | null) as Record<string, unknown>;
  if (value instanceof Error) {
    for (const name of ['name', 'message', 'stack', 'cause', 'errors'] as const) {
      if (Object.prototype.hasOwnProperty.call(value, name)) Object.defineProperty(copy, name, { value: (value as unknown as Record<string, unknown>)[name], enumerable: false, writable: true, configurable: true });
    }
  }
  return Object.assign(copy, value);
}

function walk(value: unknown, path: object[]): unknown {
  const kind = kindOf(value);
  if (!kind) return value;
  const obj = value as Record<string, unknown>;
  if (path.includes(obj)) return CIRCULAR;
  if (path.length >= MAX_DEPTH) return TOO_DEEP;
  path.push(obj);
  let copy: Record<string, unknown> | null = null;
  for (const key of Object.keys(obj)) {
    const inner = obj[key];
    if (inner === undefined || inner === null) continue;
    const next = isSecretKey(key) ? CENSOR : kind === 'deep' ? walk(inner, path) : inner;
    if (next === inner) continue;
    copy ??= shallowCopy(obj);
    copy[key] = next;
  }
  path.pop();
  return copy ?? obj;
}

/**
 * `value` with every credential replaced by the censor; the same object when it holds none. A
 * cycle is cut where it closes (`[Circular]`), and anything deeper than eight levels replaced.
 */
export function redactSecrets<T>(value: T): T {
  return walk(value, []) as T;
}
