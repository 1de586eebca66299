/** The one catalogue of coded errors: every failure wcagai reports carries one of these codes. */

export interface ErrorSpec {
  /** HTTP status when the error reaches an API client. */
  status: number;
  title: string;
  /** True when trying again later may succeed. */
  retryable: boolean;
}

export const ERRORS = {
  // Input
  INVALID_URL: { status: 400, title: 'Invalid URL', retryable: false },
  UNSUPPORTED_SCHEME: { status: 400, title: 'Unsupported URL scheme', retryable: false },
  BLOCKED_TARGET: { status: 400, title: 'Target address is not allowed', retryable: false },
  INVALID_OPTIONS: { status: 400, title: 'Invalid scan options', retryable: false },
  USAGE: { status: 400, title: 'Invalid usage', retryable: false },
  // Target page
  DNS_FAILURE: { status: 502, title: 'Host name could not be resolved', retryable: true },
  CONNECTION_FAILED: { status: 502, title: 'Connection to the target failed', retryable: true },
  TLS_CERT_INVALID: { status: 502, title: "Target's TLS certificate was refused", retryable: false },
  REDIRECT_LOOP: { status: 502, title: 'Target redirects in a loop', retryable: false },
  HTTP_CLIENT_ERROR: { status: 422, title: 'Target answered with a client error', retryable: false },
  HTTP_RATE_LIMITED: { status: 502, title: 'Target asked to slow down', retryable: true },
  HTTP_SERVER_ERROR: { status: 502, title: 'Target answered with a server error', retryable: true },
  NON_HTML_DOCUMENT: { status: 422, title: 'Target is not an HTML document', retryable: false },
  // Deadlines
  NAVIGATION_TIMEOUT: { status: 504, title: 'Navigation timed out', retryable: true },
  SETTLE_TIMEOUT: { status: 504, title: 'Page did not settle in time', retryable: true },
  AXE_TIMEOUT: { status: 504, title: 'Accessibility checks timed out', retryable: true },
  SCAN_TIMEOUT: { status: 504, title: 'Scan exceeded its overall deadline', retryable: true },
  // Browser
  BROWSER_NOT_FOUND: { status: 500, title: 'No Chromium or Chrome found', retryable: false },
  BROWSER_CRASHED: { status: 503, title: 'Browser crashed or disconnected', retryable: true },
  BROWSER_LAUNCH_FAILED: { status: 503, title: 'Browser could not be started', retryable: true },
  AXE_FAILED: { status: 500, title: 'Accessibility checks failed', retryable: true },
  SCAN_ABORTED: { status: 503, title: 'Scan was aborted', retryable: true },
  STALLED: { status: 503, title: 'Scan stalled: its worker stopped (crash or kill) too many times', retryable: true },
  INTERNAL: { status: 500, title: 'Internal error', retryable: true },
  // Service
  VALIDATION_FAILED: { status: 400, title: 'Request validation failed', retryable: false },
  BAD_REQUEST: { status: 400, title: 'Bad request', retryable: false },
  UNAUTHORIZED: { status: 401, title: 'Authentication required', retryable: false },
  FORBIDDEN: { status: 403, title: 'Forbidden', retryable: false },
  NOT_FOUND: { status: 404, title: 'Not found', retryable: false },
  METHOD_NOT_ALLOWED: { status: 405, title: 'Method not allowed', retryable: false },
  REQUEST_TIMEOUT: { status: 408, title: 'Request not received in time', retryable: true },
  CONFLICT: { status: 409, title: 'Conflict', retryable: false },
  PAYLOAD_TOO_LARGE: { status: 413, title: 'Request body too large', retryable: false },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'Unsupported media type', retryable: false },
  HEADERS_TOO_LARGE: { status: 431, title: 'Request header fields too large', retryable: false },
  RATE_LIMITED: { status: 429, title: 'Too many requests', retryable: true },
  QUEUE_FULL: { status: 503, title: 'Scan queue is full', retryable: true },
  OVERLOADED: { status: 503, title: 'Service is under pressure', retryable: true },
  REDIS_UNAVAILABLE: { status: 503, title: 'Queue store unavailable', retryable: true },
  SHUTTING_DOWN: { status: 503, title: 'Service is shutting down', retryable: true },
  // External services (AI, Apollo, HubSpot, Slack, PagerDuty)
  UPSTREAM_UNAVAILABLE: { status: 502, title: 'External service unavailable', retryable: true },
  UPSTREAM_TIMEOUT: { status: 504, title: 'External service timed out', retryable: true },
  UPSTREAM_RATE_LIMITED: { status: 503, title: 'External service asked to slow down', retryable: true },
  UPSTREAM_REJECTED: { status: 502, title: 'External service refused the request', retryable: false },
  UPSTREAM_INVALID_RESPONSE: { status: 502, title: 'External service answered unexpectedly', retryable: false },
  CIRCUIT_OPEN: { status: 503, title: 'Circuit breaker open', retryable: true },
  NOT_CONFIGURED: { status: 501, title: 'Integration not configured', retryable: false },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

/** An error with a stable code from the catalogue. Match on `code`, never on the message. */
export class WcagaiError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly status: number;
  readonly details?: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'WcagaiError';
    this.code = code;
    this.retryable = ERRORS[code].retryable;
    this.status = ERRORS[code].status;
    if (options?.details) this.details = options.details;
  }
}

export function isWcagaiError(err: unknown): err is WcagaiError {
  return err instanceof WcagaiError;
}

/** Any thrown value as a coded error (unknown failures become INTERNAL). */
export function toWcagaiError(err: unknown): WcagaiError {
  if (err instanceof WcagaiError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new WcagaiError('INTERNAL', message, { cause: err });
}

/**
 * How a NAVIGATION_TIMEOUT message begins when the document did answer and only its load never
 * finished (a subresource still loading): the target is reachable, unlike a host that never answers.
 */
export const ANSWERED_LOAD_TIMEOUT = 'the document answered, but its load did not finish';
