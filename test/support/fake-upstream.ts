import { afterAll, beforeAll } from 'vitest';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A request a fake external service received, body parsed when it is JSON. */
export interface FakeRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  rawBody: string;
  body: any;
  /** performance.now() when the request arrived. */
  at: number;
}

export interface FakeAnswer {
  status?: number;
  json?: unknown;
  text?: string;
  headers?: Record<string, string>;
  /** Wait this long before answering. */
  delayMs?: number;
  /** Never answer (until the server closes). */
  hang?: boolean;
}

export type FakeHandler = (req: FakeRequest) => FakeAnswer | Promise<FakeAnswer>;

/** A stand-in for an external HTTP API (OpenAI, Apollo, HubSpot, Slack, PagerDuty) on 127.0.0.1. */
export interface FakeUpstream {
  origin: string;
  url(path: string): string;
  readonly requests: FakeRequest[];
  requestsTo(path: string): FakeRequest[];
  /** Answers requests to `path` (any method); replaces an earlier handler. Unknown paths answer 404. */
  on(path: string, handler: FakeHandler): FakeUpstream;
  close(): Promise<void>;
}

export async function startFakeUpstream(): Promise<FakeUpstream> {
  const handlers = new Map<string, FakeHandler>();
  const requests: FakeRequest[] = [];
  const server: Server = createServer((req, res) => {
    const at = performance.now();
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const rawBody = Buffer.concat(chunks).toString('utf8');
      let body: unknown = rawBody;
      try {
        body = rawBody ? JSON.parse(rawBody) : undefined;
      } catch {
        // not JSON: keep the text
      }
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      const request: FakeRequest = { method: req.method ?? 'GET', path, headers: req.headers, rawBody, body, at };
      requests.push(request);
      const handler = handlers.get(path);
      void (async () => {
        const answer: FakeAnswer = handler ? await handler(request) : { status: 404, text: 'not found' };
        if (answer.hang) return;
        if (answer.delayMs) await new Promise((r) => setTimeout(r, answer.delayMs));
        if (res.destroyed) return;
        const isJson = answer.json !== undefined;
        res.writeHead(answer.status ?? 200, { 'content-type': isJson ? 'application/json' : 'text/plain', ...answer.headers });
        res.end(isJson ? JSON.stringify(answer.json) : (answer.text ?? ''));
      })();
    });
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => ok());
  });
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const fake: FakeUpstream = {
    origin,
    url: (path) => `${origin}${path}`,
    requests,
    requestsTo: (path) => requests.filter((r) => r.path === path),
    on(path, handler) {
      handlers.set(path, handler);
      return fake;
    },
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
  return fake;
}

/**
 * One fake upstream for a whole test file: started before its tests, closed after them. The object
 * returned forwards to it (usable from the tests and hooks, not at the file's top level).
 */
export function fakeUpstreamForFile(): FakeUpstream {
  let fake: FakeUpstream | undefined;
  beforeAll(async () => {
    fake = await startFakeUpstream();
  });
  afterAll(async () => {
    await fake?.close();
  });
  const started = (): FakeUpstream => {
    if (!fake) throw new Error('the fake upstream starts before the tests of the file');
    return fake;
  };
  const proxy: FakeUpstream = {
    get origin() {
      return started().origin;
    },
    url: (path) => started().url(path),
    get requests() {
      return started().requests;
    },
    requestsTo: (path) => started().requestsTo(path),
    on: (path, handler) => (started().on(path, handler), proxy),
    close: () => started().close(),
  };
  return proxy;
}
