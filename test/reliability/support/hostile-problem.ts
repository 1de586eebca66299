import type { IncomingHttpHeaders } from 'node:http';

const CODE = /^[A-Z][A-Z0-9_]{1,63}$/;

/** The type URI wcagai gives an error code (`QUEUE_FULL` → `urn:wcagai:problem:queue-full`). */
export function typeOf(code: string): string {
  return `urn:wcagai:problem:${code.toLowerCase().replace(/_/g, '-')}`;
}

function header(headers: IncomingHttpHeaders, name: string): string {
  const value = headers[name];
  return Array.isArray(value) ? value.join(', ') : (value ?? '');
}

/**
 * What is wrong with an error answer as an RFC 9457 problem of wcagai: an empty list when it is a
 * valid one (type, title, status equal to the HTTP status, detail, instance, code, requestId equal
 * to X-Request-ID, timestamp; `errors` naming fields on validation failures). A HEAD answer has no
 * body, so only its media type is checked.
 */
export function problemIssues(status: number, headers: IncomingHttpHeaders, body: string, method = 'GET'): string[] {
  const issues: string[] = [];
  const type = header(headers, 'content-type');
  if (!type.startsWith('application/problem+json')) issues.push(`content-type is ${JSON.stringify(type)}`);
  if (method === 'HEAD') return issues;
  let p: Record<string, unknown>;
  try {
    p = JSON.parse(body) as Record<string, unknown>;
  } catch {
    return [...issues, `body is not JSON: ${JSON.stringify(body.slice(0, 120))}`];
  }
  if (!p || typeof p !== 'object' || Array.isArray(p)) return [...issues, 'body is not an object'];
  const code = p.code;
  if (typeof code !== 'string' || !CODE.test(code)) issues.push(`code ${JSON.stringify(code)}`);
  else if (p.type !== typeOf(code)) issues.push(`type ${JSON.stringify(p.type)} for code ${code}`);
  if (typeof p.title !== 'string' || p.title === '') issues.push('title missing');
  if (p.status !== status) issues.push(`status ${JSON.stringify(p.status)} in a ${status} answer`);
  if (typeof p.detail !== 'string' || p.detail === '') issues.push('detail missing');
  // The request target: a path, `*` (asterisk form) or an absolute URL (absolute form), all URI references.
  if (typeof p.instance !== 'string' || !(p.instance.startsWith('/') || p.instance === '*' || /^https?:\/\//i.test(p.instance))) issues.push(`instance ${JSON.stringify(p.instance)}`);
  if (typeof p.requestId !== 'string' || p.requestId === '') issues.push('requestId missing');
  else if (headers['x-request-id'] !== undefined && header(headers, 'x-request-id') !== p.requestId) issues.push('requestId differs from X-Request-ID');
  if (typeof p.timestamp !== 'string' || Number.isNaN(Date.parse(p.timestamp))) issues.push(`timestamp ${JSON.stringify(p.timestamp)}`);
  if (code === 'VALIDATION_FAILED') {
    const errors = p.errors;
    const ok = Array.isArray(errors) && errors.length > 0 && errors.every((e) => e && typeof e.field === 'string' && typeof e.message === 'string');
    if (!ok) issues.push(`validation problem without field errors: ${JSON.stringify(errors)}`);
  }
  if (typeof p.detail === 'string' && /\n\s+at .+:\d+:\d+/.test(p.detail)) issues.push('detail carries a stack trace');
  return issues;
}
