/**
 * Log redaction: the value of every property named like a credential is replaced, at any depth,
 * before a line is written, and URLs are written with their credentials masked (`urlForLog`).
 * Objects are copied only along the path to a secret, so a line without one (nearly every line)
 * costs a walk over its keys and nothing else.
 */
import { EventEmitter } from 'node:events';
import { isSecretName, maskUrl } from '../config/secrets.js';

export { isSecretName };

export const CENSOR = '[redacted]';

/**
 * A URL (absolute, or a path with a query) as a log line shows it: the user and password masked,
 * and the values of credential-like query and fragment parameters (`token`, `access_token`,
 * `api_key`, `password`, `sig`, …) replaced. Text that is not a URL passes through these same
 * rules. The one function every log line with a URL uses; a stored result keeps the real URL.
 */
export function urlForLog(url: string): string {
  return maskUrl(url, CENSOR);
}

const URL_IN_TEXT = /[a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^\s"'<>]+/g;

/** Text (an error message) with every absolute URL in it as `urlForLog` writes it. */
export function textForLog(text: string): string {
  return text.includes('://') ? text.replace(URL_IN_TEXT, urlForLog) : text;
}

/** Deeper than any line we write: a value below it is replaced, never written unchecked. */
const MAX_DEPTH = 8;
const TOO_DEEP = '[too deep]';
const CIRCULAR = '[Circular]';

/**
 * How a value is walked: plain objects, arrays, errors (their `cause` and AggregateError's
 * `errors` included) and instances of other classes, at every depth; emitters (a socket, a
 * stream, a request's raw message, a logger) only for their own field names, since walking into
 * them would be slow, and what of them reaches a line goes through serializers that pick a few
 * safe fields. A URL object is written masked.
 */
function kindOf(value: unknown): 'deep' | 'shallow' | 'url' | null {
  if (value === null || typeof value !== 'object') return null;
  if (Array.isArray(value) || value instanceof Error) return 'deep';
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto === Object.prototype || proto === null) return 'deep';
  if (value instanceof URL) return 'url';
  // Bytes: a key per byte, and no names.
  if (ArrayBuffer.isView(value)) return null;
  return value instanceof EventEmitter ? 'shallow' : 'deep';
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

/** The fields walked: own enumerable ones, and an error's `cause` and `errors` (not enumerable, yet serialized). */
function fieldsOf(obj: Record<string, unknown>): string[] {
  const keys = Object.keys(obj);
  if (obj instanceof Error) {
    for (const name of ['cause', 'errors']) if (Object.prototype.hasOwnProperty.call(obj, name) && !keys.includes(name)) keys.push(name);
  }
  return keys;
}

function walk(value: unknown, path: object[]): unknown {
  const kind = kindOf(value);
  if (!kind) return value;
  if (kind === 'url') {
    const href = (value as URL).href;
    const masked = urlForLog(href);
    return masked === href ? value : masked;
  }
  const obj = value as Record<string, unknown>;
  if (path.includes(obj)) return CIRCULAR;
  if (path.length >= MAX_DEPTH) return TOO_DEEP;
  path.push(obj);
  let copy: Record<string, unknown> | null = null;
  // An error quoting a URL (`net::ERR_CONNECTION_REFUSED at https://host/?token=…`) is written masked.
  if (obj instanceof Error && typeof obj.message === 'string') {
    const message = textForLog(obj.message);
    if (message !== obj.message) {
      copy = shallowCopy(obj);
      copy.message = message;
      if (typeof obj.stack === 'string') copy.stack = textForLog(obj.stack);
    }
  }
  for (const key of fieldsOf(obj)) {
    const inner = obj[key];
    if (inner === undefined || inner === null) continue;
    const next = isSecretName(key) ? CENSOR : kind === 'deep' ? walk(inner, path) : inner;
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
