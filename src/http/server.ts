import { createHash } from 'node:crypto';
import rateLimit from '@fastify/rate-limit';
import underPressure from '@fastify/under-pressure';
import type { Server } from 'node:http';
import Fastify, { errorCodes, LogController, type FastifyBaseLogger, type FastifyHttpOptions, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { Keys } from '../queue/keys.js';
import type { ScanProducer } from '../queue/producer.js';
import type { RedisClient } from '../queue/redis.js';
import type { ResultStore } from '../queue/store.js';
import type { CompletionWaiter } from '../queue/waiter.js';
import type { Scanner, TargetPolicy } from '../scanner/types.js';
import type { Metrics } from '../observability/metrics.js';
import { WcagaiError } from '../errors/catalogue.js';
import { textForLog, urlForLog } from '../observability/redact.js';
import { noopReporter, type ErrorReporter } from '../observability/sentry.js';
import { authPlugin, presentedApiKey, secretMatcher } from './plugins/auth.js';
import { metricsPlugin } from './plugins/metrics.js';
import { batchedRedisStore } from './plugins/rate-limit-store.js';
import { errorReportingPlugin } from './plugins/sentry.js';
import { requestIdFrom, requestIdPlugin, traceIdFrom } from './plugins/request-id.js';
import { routerRefused } from './plugins/router-refusals.js';
import { securityHeadersPlugin, setSecurityHeaders } from './plugins/security-headers.js';
import { clientErrorProblem } from './client-error.js';
import { classifyHttpError, problem, sendProblem } from './problem.js';
import { adminQueueRoutes } from './routes/admin.js';
import { batchRoutes } from './routes/batches.js';
import { healthRoutes, type HealthSection } from './routes/health.js';
import { scanRoutes } from './routes/scans.js';
import { workerRoutes } from './routes/workers.js';

/** Everything the HTTP layer uses; built by the composition root. */
export interface ServerDeps {
  config: Config;
  logger: Logger;
  redis: RedisClient;
  keys: Keys;
  producer: ScanProducer;
  store: ResultStore;
  waiter: CompletionWaiter;
  policy: TargetPolicy;
  toRedisError(err: unknown): Error;
  /** The scan engine of an embedded worker, for readiness and health. */
  scanner?: Scanner | null;
  /** Sections later subsystems add to /health/detailed. */
  healthSections?: HealthSection[];
  metrics?: Metrics;
  reporter?: ErrorReporter;
  /** Extra routes and hooks registered after the core ones (DLQ, breakers, events). */
  extend?: Array<(app: FastifyInstance) => void | Promise<void>>;
}

const OPEN_PATHS = /^\/(health|metrics)(\/|$|\?)/;

/** What the "incoming request" line shows of a request (Fastify's fields, with the URL masked). */
function requestForLog(req: { method?: string; url?: string; host?: string; ip?: string; socket?: { remotePort?: number } }) {
  return { method: req.method, url: urlForLog(String(req.url ?? '')), host: req.host, remoteAddress: req.ip, remotePort: req.socket?.remotePort };
}

/**
 * Fastify's request lines. The incoming one is written before any hook runs, so it takes the
 * trace id from the traceparent header itself (later lines get it from the request's context).
 */
class RequestLogController extends LogController {
  override incomingRequest(request: FastifyRequest, _reply: FastifyReply): void {
    if (this.isLogDisabled(request)) return;
    const traceId = request.headers.traceparent === undefined ? undefined : traceIdFrom(request.headers.traceparent);
    request.log.info(traceId ? { req: request, traceId } : { req: request }, 'incoming request');
  }
}

/** `RATE_LIMIT_WINDOW` in words: `1 minute`, `15 seconds`, `1500 ms`. */
function windowText(ms: number): string {
  const units: Array<[number, string]> = [[86_400_000, 'day'], [3_600_000, 'hour'], [60_000, 'minute'], [1_000, 'second']];
  for (const [size, name] of units) {
    if (ms >= size && ms % size === 0) return `${ms / size} ${name}${ms === size ? '' : 's'}`;
  }
  return `${ms} ms`;
}

/**
 * What every wcagai HTTP server shares: request ids (taken from X-Request-ID or made, echoed, and
 * the log's `requestId`), security headers, and every refusal as problem+json, from the parser,
 * the router, an unknown route or a failing handler alike. `options` are the server's own limits.
 */
function problemServer(logger: FastifyBaseLogger, options: Pick<FastifyHttpOptions<Server>, 'bodyLimit' | 'requestTimeout' | 'connectionTimeout' | 'keepAliveTimeout' | 'maxRequestsPerSocket' | 'return503OnClosing' | 'http' | 'routerOptions' | 'trustProxy'>): FastifyInstance {
  const app = Fastify({
    loggerInstance: logger,
    genReqId: (req) => requestIdFrom(req.headers['x-request-id']),
    // The same key as the context mixin and the worker: the "incoming request" line (logged before any
    // hook runs) carries requestId too, so one grep follows a request from arrival to completion.
    logController: new RequestLogController({ requestIdLogLabel: 'requestId' }),
    ...options,
    // Parser-level refusals (400, 408, 431) are problems too, not Fastify's plain JSON.
    clientErrorHandler: clientErrorProblem,
    // Router refusals (a malformed %-escape, a path parameter over maxParamLength) happen before any
    // route or hook; without this Fastify answers them in its own plain JSON. No hook runs for them
    // either: the headers, metrics and "request completed" line of every other answer are added here.
    frameworkErrors: (err, request, reply) => {
      const { code, detail } = classifyHttpError(err);
      reply.header('x-request-id', request.id);
      setSecurityHeaders(reply);
      routerRefused(request, reply, code);
      return sendProblem(reply, problem(request, code, detail));
    },
  });
  requestIdPlugin(app);
  securityHeadersPlugin(app);
  app.setNotFoundHandler((request, reply) => sendProblem(reply, problem(request, 'NOT_FOUND', `no route for ${request.method} ${request.url.split('?')[0]}`)));
  app.setErrorHandler((err, request, reply) => {
    const classified = classifyHttpError(err);
    const { code, extra, headers, internal, logDetail } = classified;
    // Fastify's own 413 says only "Request body is too large": the client is told the limit.
    const detail = code === 'PAYLOAD_TOO_LARGE' ? tooLargeDetail(request.routeOptions.bodyLimit ?? options.bodyLimit ?? 1_048_576) : classified.detail;
    if (internal) request.log.error({ err, event: 'http.error' }, 'request failed');
    // A detail may quote a URL the client sent (a sitemap, a scan target): its credentials stay out of the log.
    else request.log.info({ event: 'http.problem', code }, textForLog(logDetail ?? detail));
    return sendProblem(reply, problem(request, code, detail, extra), headers);
  });
  return app;
}

/** `65536` as `64 KiB`, `1048576` as `1 MiB`, `1000` as `1000 bytes`. */
function bytesText(bytes: number): string {
  const units: Array<[number, string]> = [[2 ** 30, 'GiB'], [2 ** 20, 'MiB'], [2 ** 10, 'KiB']];
  for (const [size, name] of units) {
    if (bytes >= size) return `${Math.round((bytes / size) * 10) / 10} ${name}`;
  }
  return `${bytes} bytes`;
}

function tooLargeDetail(limit: number): string {
  return `the request body is larger than the limit of ${limit} bytes (${bytesText(limit)})`;
}

/** One place in a parsed JSON value: its key (a property name or an index) and its parent's place. */
interface Place {
  key: string | number;
  parent: Place | null;
}

/** `viewport.__proto__`, `urls[2].x`; past 8 levels, the last 8 after `…`. */
function pathOf(place: Place): string {
  const keys: Array<string | number> = [];
  for (let at: Place | null = place; at; at = at.parent) keys.unshift(at.key);
  const shown = keys.length > 8 ? keys.slice(-8) : keys;
  const path = shown.map((k, i) => (typeof k === 'number' ? `[${k}]` : i === 0 ? k : `.${k}`)).join('');
  return keys.length > 8 ? `…${path.startsWith('[') ? '' : '.'}${path}` : path;
}

/**
 * Where a parsed JSON value holds a key that could poison a prototype once merged into an object
 * (`__proto__`, or `constructor` holding `prototype`): its path (`viewport.__proto__`), or
 * undefined. Iterative: a body of 64 KiB can nest tens of thousands of levels deep.
 */
function poisonedKey(value: unknown): string | undefined {
  const stack: Array<[unknown, Place | null]> = [[value, null]];
  while (stack.length > 0) {
    const [node, place] = stack.pop()!;
    if (node === null || typeof node !== 'object') continue;
    if (Array.isArray(node)) {
      for (let i = node.length - 1; i >= 0; i--) stack.push([node[i], { key: i, parent: place }]);
      continue;
    }
    const record = node as Record<string, unknown>;
    for (const key of Object.keys(record)) {
      const child = record[key];
      if (key === '__proto__') return pathOf({ key, parent: place });
      if (key === 'constructor' && child !== null && typeof child === 'object' && Object.prototype.hasOwnProperty.call(child, 'prototype')) return pathOf({ key: 'prototype', parent: { key, parent: place } });
      stack.push([child, { key, parent: place }]);
    }
  }
  return undefined;
}

/**
 * The JSON body parser. Fastify's own answers "not valid JSON" for valid JSON it refuses for
 * safety (a `__proto__` key) and reads a body in any charset as UTF-8: here the first is a 400
 * naming the key, the second a 415 naming the charset (JSON is UTF-8, RFC 8259 section 8.1).
 */
function jsonBodyParser(request: FastifyRequest, body: string, done: (err: Error | null, body?: unknown) => void): void {
  // An unknown path is a 404 whatever its body (bad JSON, another charset, gzip): nothing reads it.
  if (request.is404) {
    done(null, undefined);
    return;
  }
  const charset = /;\s*charset\s*=\s*(?:"([^"]*)"|([^\s;]*))/i.exec(String(request.headers['content-type'] ?? ''));
  const name = charset ? (charset[1] ?? charset[2] ?? '') : undefined;
  // US-ASCII is a subset of UTF-8: what such a client sends reads the same. So is an ASCII body
  // labelled with a single-byte charset (some HTTP clients label every body ISO-8859-1): only
  // its other characters would read wrong.
  const asciiCompatible = name !== undefined && /^(iso-8859-\d+|latin-?1|windows-125\d|cp125\d)$/i.test(name);
  if (name !== undefined && !/^(utf-?8|us-ascii)$/i.test(name) && !(asciiCompatible && !/[^\x00-\x7f]/.test(body))) {
    done(new WcagaiError('UNSUPPORTED_MEDIA_TYPE', `a JSON body in charset ${JSON.stringify(name)} is not accepted: send it as UTF-8 (charset=utf-8, or no charset parameter)`));
    return;
  }
  if (body.length === 0) {
    done(new errorCodes.FST_ERR_CTP_EMPTY_JSON_BODY());
    return;
  }
  let value: unknown;
  try {
    // A leading byte order mark is no JSON, but read as Fastify's parser read it.
    value = JSON.parse(body.charCodeAt(0) === 0xfeff ? body.slice(1) : body);
  } catch {
    done(new errorCodes.FST_ERR_CTP_INVALID_JSON_BODY());
    return;
  }
  // Any key a walk could find is spelt out in the text (a `\u` escape can spell one): most bodies skip the walk.
  const key = body.includes('__proto__') || body.includes('constructor') || body.includes('\\u') ? poisonedKey(value) : undefined;
  if (key !== undefined) {
    done(new WcagaiError('BAD_REQUEST', `the body is valid JSON, but its key ${key} is refused for safety: a key that can alter object prototypes`, { details: { field: key } }));
    return;
  }
  done(null, value);
}

const digests = new Map<string, string>();

/** The rate-limit key of an API key: a digest (keys never reach Redis), remembered for the few keys a deployment has. */
function keyDigest(key: string): string {
  let digest = digests.get(key);
  if (digest === undefined) {
    digest = createHash('sha256').update(key).digest('hex').slice(0, 24);
    // Made-up keys must not grow the map without bound.
    if (digests.size >= 1_000) digests.clear();
    digests.set(key, digest);
  }
  return digest;
}

/** Builds the API without listening (only `serve` listens; tests use `inject`). */
export async function buildServer(deps: ServerDeps): Promise<FastifyInstance> {
  const { config } = deps;
  // Fastify's own `req` serializer logs the URL as sent, query string included; a client that puts
  // a token there (`?token=…`) would write it into every "incoming request" line.
  const app = problemServer(deps.logger.child({}, { serializers: { req: requestForLog } }) as FastifyBaseLogger, {
    bodyLimit: config.BODY_LIMIT,
    // Prefer: wait holds a request up to 120 s without traffic; slow senders are bounded by requestTimeout.
    requestTimeout: 30_000,
    connectionTimeout: 130_000,
    // Idle keep-alive connections outlive a load balancer's (see HTTP_KEEP_ALIVE_TIMEOUT); an idle
    // connection is not subject to headersTimeout, which counts from a request's first byte.
    keepAliveTimeout: config.HTTP_KEEP_ALIVE_TIMEOUT,
    // No cap on requests per connection: past a cap, Node answers what a keep-alive client already
    // sent on that connection with a bare 503 of its own (not problem+json), which a client
    // reading health 8,000 times a second over two connections met as 4,064 failed requests.
    maxRequestsPerSocket: 0,
    return503OnClosing: false,
    // Node's own missing-Host refusal is an empty 400; the onRequest hook below refuses it as a problem.
    // Node enforces headersTimeout and requestTimeout only when it sweeps its connections (every 30 s
    // by default), so an idle or slow-loris connection lived ~40 s, not 10; a 1 s sweep keeps them near the limit.
    http: { headersTimeout: 10_000, maxHeaderSize: 16_384, requireHostHeader: false, connectionsCheckingInterval: 1_000 },
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 200 },
    // Behind a load balancer: the client (rate limit per IP, request lines) is read from
    // X-Forwarded-For only when the peer is a trusted proxy; never by default, or any client could pick its IP.
    trustProxy: config.TRUST_PROXY,
  });
  if (deps.metrics) metricsPlugin(app, deps.metrics, config.METRICS_TOKEN ? { token: config.METRICS_TOKEN } : {});
  errorReportingPlugin(app, deps.reporter ?? noopReporter);
  // JSON only: Fastify's built-in text/plain parser would let other media types reach validation instead of a 415.
  app.removeContentTypeParser('text/plain');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => jsonBodyParser(request, body as string, done));
  // Bodies are read as sent: a compressed one (Content-Encoding: gzip) would reach the JSON parser
  // as bytes and be refused as "not valid JSON". It is a 415 naming the codings taken, none but
  // identity, in Accept-Encoding (RFC 9110 section 15.5.16).
  app.addHook('preParsing', (request, reply, payload, done) => {
    const coding = request.headers['content-encoding'];
    const length = request.headers['content-length'];
    const hasBody = request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
    // An unknown path is a 404 whatever its body: the not-found handler answers it.
    if (request.is404 || coding === undefined || !hasBody || /^\s*(identity\s*)?$/i.test(coding)) {
      done(null, payload);
      return;
    }
    reply.header('connection', 'close');
    sendProblem(reply, problem(request, 'UNSUPPORTED_MEDIA_TYPE', `a request body with Content-Encoding ${JSON.stringify(coding)} is not accepted: send it uncompressed`), { 'accept-encoding': 'identity' });
  });

  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  // Callback style, like every hook a request passes through: an async hook costs a promise per request.
  app.addHook('onRequest', (request, reply, done) => {
    if (request.raw.httpVersion === '1.1' && request.headers.host === undefined) {
      sendProblem(reply, problem(request, 'BAD_REQUEST', 'an HTTP/1.1 request needs a Host header'));
      return;
    }
    if (closing) {
      reply.header('connection', 'close');
      sendProblem(reply, problem(request, 'SHUTTING_DOWN', 'the server is shutting down; retry on another instance'), { 'retry-after': '5' });
      return;
    }
    done();
  });
  // An answer written while closing (a Prefer: wait held over the start of shutdown) ends its
  // connection: left open, the connection would hold the close up for HTTP_KEEP_ALIVE_TIMEOUT.
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (closing) reply.header('connection', 'close');
    done(null, payload);
  });

  await app.register(underPressure, {
    maxEventLoopDelay: config.MAX_EVENT_LOOP_DELAY,
    ...(config.MAX_HEAP_MB ? { maxHeapUsedBytes: config.MAX_HEAP_MB * 2 ** 20 } : {}),
    ...(config.MAX_RSS_MB ? { maxRssBytes: config.MAX_RSS_MB * 2 ** 20 } : {}),
    retryAfter: 10,
    // A rejected promise ends the request through the error handler (problem+json, Retry-After).
    // Sending here and returning nothing would let under-pressure call next(): the route would still run.
    pressureHandler: async (_request, _reply, type, value) => {
      throw new WcagaiError('OVERLOADED', `the server is under pressure (${type}: ${Math.round(Number(value))}); retry later`, { details: { retryAfterSeconds: 10 } });
    },
  });

  authPlugin(app, { adminToken: config.ADMIN_TOKEN, apiKeys: config.API_KEYS });

  if (config.RATE_LIMIT_MAX > 0) {
    // Only a configured API key gets a count of its own: any other value (API_KEYS unset, or a
    // route that checks no key) is the client's to make up, a fresh count per request, so the
    // client's IP counts instead.
    const isApiKey = secretMatcher(config.API_KEYS);
    await app.register(rateLimit, {
      global: true,
      max: config.RATE_LIMIT_MAX,
      timeWindow: config.RATE_LIMIT_WINDOW,
      // Shared across every `serve` process through Redis; a Redis outage must not turn into 500s here.
      store: batchedRedisStore(deps.redis, `${deps.keys.bullPrefix}:rl:`),
      skipOnError: true,
      allowList: (request) => OPEN_PATHS.test(request.url),
      keyGenerator: (request) => {
        const key = config.API_KEYS.length ? presentedApiKey(request) : undefined;
        return key && isApiKey(key) ? `key:${keyDigest(key)}` : `ip:${request.ip}`;
      },
      errorResponseBuilder: (_request, context) => ({
        statusCode: 429,
        code: 'RATE_LIMITED',
        // `context.after` is the time left in the window, not the window.
        message: `rate limit of ${context.max} requests per ${windowText(config.RATE_LIMIT_WINDOW)} exceeded; retry in ${Math.ceil(context.ttl / 1000)} s`,
      }),
    });
  }

  healthRoutes(app, deps);
  scanRoutes(app, deps);
  batchRoutes(app, deps);
  workerRoutes(app, deps);
  adminQueueRoutes(app, deps);
  for (const extend of deps.extend ?? []) await extend(app);
  return app;
}

/**
 * The health endpoints alone, for a `wcagai worker` process (WORKER_HEALTH_PORT): liveness,
 * readiness (Redis reachable and a browser up) and the short summary, as `serve` answers them,
 * errors in problem+json. No API, no auth: it says only whether the process can work.
 */
export async function buildHealthServer(deps: Pick<ServerDeps, 'logger' | 'redis' | 'keys' | 'producer' | 'store' | 'scanner' | 'healthSections'>): Promise<FastifyInstance> {
  const app = problemServer(deps.logger.child({ component: 'health' }, { level: 'warn' }) as FastifyBaseLogger, {
    requestTimeout: 10_000,
    http: { headersTimeout: 5_000, maxHeaderSize: 16_384, connectionsCheckingInterval: 1_000 },
    // `/health/ready/` is the same path, as on the API.
    routerOptions: { ignoreTrailingSlash: true },
  });
  healthRoutes(app, deps);
  return app;
}
