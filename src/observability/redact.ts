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

/** Deeper than any line we write; a cycle ends here too. */
const MAX_DEPTH = 8;

function isSecretKey(key: string): boolean {
  return SECRET_KEYS.has(key) || SECRET_KEYS.has(key.toLowerCase());
}

/**
 * Objects walked: plain ones, arrays, and errors (their own enumerable fields reach the line
 * through the error serializer). Others (a Fastify request, a socket) are logged only through
 * serializers that pick a few safe fields, and walking them would be slow and circular.
 */
function walkable(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false;
  if (Array.isArray(value) || value instanceof Error) return true;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/** A copy keeping the prototype (an error stays an error), its message and stack included. */
function shallowCopy(value: Record<string, unknown>): Record<string, unknown> {
  if (Array.isArray(value)) return [...value] as unknown as Record<string, unknown>;
  const copy = Object.create(Object.getPrototypeOf(value) as object | null) as Record<string, unknown>;
  if (value instanceof Error) {
    for (const name of ['name', 'message', 'stack', 'cause'] as const) {
      if (Object.prototype.hasOwnProperty.call(value, name)) Object.defineProperty(copy, name, { value: value[name], enumerable: false, writable: true, configurable: true });
    }
  }
  return Object.assign(copy, value);
}

/** `value` with every credential replaced by the censor; the same object when it holds none. */
export function redactSecrets<T>(value: T, depth = 0): T {
  if (depth >= MAX_DEPTH || !walkable(value)) return value;
  let copy: Record<string, unknown> | null = null;
  for (const key of Object.keys(value)) {
    const inner = value[key];
    if (inner === undefined || inner === null) continue;
    const next = isSecretKey(key) ? CENSOR : redactSecrets(inner, depth + 1);
    if (next === inner) continue;
    copy ??= shallowCopy(value);
    copy[key] = next;
  }
  return (copy ?? value) as T;
}
