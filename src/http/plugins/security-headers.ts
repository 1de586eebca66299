import type { FastifyInstance } from 'fastify';

const API_CSP = "default-src 'none'; frame-ancestors 'none'";
// The HTML report is one self-contained page: inline styles and data: images only.
const REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'";

/** Security headers on every answer. */
export function securityHeadersPlugin(app: FastifyInstance): void {
  app.addHook('onSend', async (_request, reply, payload) => {
    reply.header('x-content-type-options', 'nosniff');
    reply.header('x-frame-options', 'DENY');
    reply.header('referrer-policy', 'no-referrer');
    reply.header('cross-origin-resource-policy', 'same-origin');
    reply.header('cross-origin-opener-policy', 'same-origin');
    const type = String(reply.getHeader('content-type') ?? '');
    if (!reply.hasHeader('content-security-policy')) reply.header('content-security-policy', type.startsWith('text/html') ? REPORT_CSP : API_CSP);
    reply.header('cache-control', reply.getHeader('cache-control') ?? 'no-store');
    return payload;
  });
}
