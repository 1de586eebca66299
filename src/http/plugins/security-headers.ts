import type { FastifyInstance, FastifyReply } from 'fastify';

const API_CSP = "default-src 'none'; frame-ancestors 'none'";
// The HTML report is one self-contained page: inline styles and data: images only.
const REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'";

const FIXED = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-resource-policy': 'same-origin',
  'cross-origin-opener-policy': 'same-origin',
};

/**
 * The headers of an answer written by hand on the socket (a request the HTTP parser refused never
 * becomes a Fastify reply): the fixed ones, the API's CSP and no-store, as `Name: value` lines.
 */
export const SECURITY_HEADER_LINES = Object.entries({ ...FIXED, 'content-security-policy': API_CSP, 'cache-control': 'no-store' })
  .map(([name, value]) => `${name}: ${value}\r\n`)
  .join('');

/** Sets the security headers of an answer (its CSP by its content type, the API's when it has none yet). */
export function setSecurityHeaders(reply: FastifyReply): void {
  reply.headers(FIXED);
  const type = String(reply.getHeader('content-type') ?? '');
  if (!reply.hasHeader('content-security-policy')) reply.header('content-security-policy', type.startsWith('text/html') ? REPORT_CSP : API_CSP);
  if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
}

/** Security headers on every answer (a router refusal runs no hook: see server.ts's frameworkErrors). */
export function securityHeadersPlugin(app: FastifyInstance): void {
  app.addHook('onSend', (_request, reply, payload, done) => {
    setSecurityHeaders(reply);
    done(null, payload);
  });
}
