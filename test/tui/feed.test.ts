import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { AdminClient } from '../../src/tui/client.js';
import { SnapshotFeed, type FeedState } from '../../src/tui/feed.js';
import { SseParser, type SseEvent } from '../../src/tui/sse.js';
import { waitFor } from '../support/service.js';
import { healthySnapshot } from './fixtures.js';

/** The client side of `top`: the SSE parser, and the feed against a server whose behaviour each test sets. */

describe('SseParser', () => {
  it('parses events split anywhere, LF/CRLF/CR line ends, multi-line data, comments, ids and retry hints', () => {
    const events: SseEvent[] = [];
    const comments: string[] = [];
    const retries: number[] = [];
    const parser = new SseParser({ onEvent: (e) => events.push(e), onComment: (c) => comments.push(c), onRetry: (ms) => retries.push(ms) });
    const text = 'retry: 1500\n: hello\n\nid: 7\nevent: snapshot\ndata: {"a":\ndata: 1}\n\r\ndata:plain\r\rdata: x\r\n\r\nevent: other\ndata: y\n\n';
    // Byte by byte: every boundary, including a CR at the end of one chunk and its LF in the next.
    for (const ch of text) parser.push(ch);
    expect(retries).toEqual([1500]);
    expect(comments).toEqual(['hello']);
    expect(events).toEqual([
      { event: 'snapshot', data: '{"a":\n1}', id: '7' },
      { event: 'message', data: 'plain', id: '7' },
      { event: 'message', data: 'x', id: '7' },
      { event: 'other', data: 'y', id: '7' },
    ]);
    // Whole, in one chunk, the same.
    const again: SseEvent[] = [];
    new SseParser({ onEvent: (e) => again.push(e) }).push(text);
    expect(again).toEqual(events);
  });
});

type Mode = 'stream' | 'no-stream' | 'unauthorized' | 'silent';

/** A stand-in server: streams a snapshot every 100 ms, or answers as `mode` says. */
async function fakeServer() {
  let mode: Mode = 'stream';
  let seq = 0;
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const json = (status: number, body: unknown) => res.writeHead(status, { 'content-type': status >= 400 ? 'application/problem+json' : 'application/json' }).end(JSON.stringify(body));
    if (mode === 'unauthorized') return json(401, { code: 'UNAUTHORIZED', detail: 'admin routes need Authorization: Bearer <ADMIN_TOKEN>' });
    if (req.url === '/admin/snapshot') return json(200, healthySnapshot({ seq: ++seq }));
    if (mode === 'no-stream') return json(404, { code: 'NOT_FOUND', detail: 'no route for GET /admin/events' });
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write('retry: 50\n\n');
    if (mode === 'silent') return;
    const timer = setInterval(() => res.write(`event: snapshot\ndata: ${JSON.stringify(healthySnapshot({ seq: ++seq }))}\n\n`), 100);
    timers.add(timer);
    res.on('close', () => clearInterval(timer));
  };
  let server: Server;
  const listen = (port = 0) =>
    new Promise<number>((resolve) => {
      server = createServer(handler);
      server.on('connection', (s) => {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
      });
      server.listen(port, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
    });
  const port = await listen();
  return {
    url: `http://127.0.0.1:${port}`,
    set mode(m: Mode) {
      mode = m;
    },
    /** Goes away like a crashed server: every connection dropped, the port refusing. */
    async kill() {
      for (const t of timers) clearInterval(t);
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
    async revive() {
      await listen(port);
    },
  };
}

let feed: SnapshotFeed | null = null;
let server: Awaited<ReturnType<typeof fakeServer>> | null = null;
afterEach(async () => {
  feed?.stop();
  await server?.kill().catch(() => undefined);
  feed = null;
  server = null;
});

function start(url: string, token = 't'): { feed: SnapshotFeed; states: FeedState[] } {
  const states: FeedState[] = [];
  feed = new SnapshotFeed({ client: new AdminClient({ url, token }), backoff: { initialMs: 50, maxMs: 200 }, stallMs: 600, pollMs: 100 });
  feed.subscribe((s) => states.push(s));
  feed.start();
  return { feed, states };
}

describe('SnapshotFeed', () => {
  it('goes live on the stream; when the server dies it keeps the last snapshot and retries; then reconnects', async () => {
    server = await fakeServer();
    const { feed } = start(server.url);
    await waitFor(() => feed.current.connection.kind === 'live' && (feed.current.snapshot?.seq ?? 0) >= 2, { what: 'live', timeoutMs: 10_000 });
    expect(feed.current.connection).toMatchObject({ kind: 'live', via: 'stream' });
    await server.kill();
    const down = await waitFor(() => (feed.current.connection.kind === 'down' ? feed.current : undefined), { what: 'down', timeoutMs: 10_000 });
    expect(down.snapshot).not.toBeNull();
    const since = (down.connection as { since: number }).since;
    // Retries keep the first failure's time.
    await waitFor(() => feed.current.connection.kind === 'down' && (feed.current.connection as { attempts: number }).attempts >= 3, { what: '3 attempts', timeoutMs: 10_000 });
    expect((feed.current.connection as { since: number }).since).toBe(since);
    expect((feed.current.connection as { reason: string }).reason).toMatch(/ECONNREFUSED|closed|lost/);
    await server.revive();
    await waitFor(() => feed.current.connection.kind === 'live', { what: 'live again', timeoutMs: 10_000 });
  });

  it('reports a wrong token as unauthorized, and keeps trying', async () => {
    server = await fakeServer();
    server.mode = 'unauthorized';
    const { feed } = start(server.url, 'wrong');
    await waitFor(() => feed.current.connection.kind === 'unauthorized', { what: 'unauthorized', timeoutMs: 10_000 });
    expect(feed.current.connection).toMatchObject({ reason: 'admin routes need Authorization: Bearer <ADMIN_TOKEN>' });
    server.mode = 'stream';
    await waitFor(() => feed.current.connection.kind === 'live', { what: 'live once the server accepts', timeoutMs: 10_000 });
  });

  it('polls /admin/snapshot when the server has no event stream', async () => {
    server = await fakeServer();
    server.mode = 'no-stream';
    const { feed } = start(server.url);
    await waitFor(() => feed.current.connection.kind === 'live' && (feed.current.snapshot?.seq ?? 0) >= 3, { what: 'three polls', timeoutMs: 10_000 });
    expect(feed.current.connection).toMatchObject({ kind: 'live', via: 'poll' });
  });

  it('reconnects a stream that goes silent', async () => {
    server = await fakeServer();
    server.mode = 'silent';
    const { feed } = start(server.url);
    await waitFor(() => feed.current.connection.kind === 'down', { what: 'the stall to be noticed', timeoutMs: 10_000 });
    expect((feed.current.connection as { reason: string }).reason).toMatch(/no data for/);
    server.mode = 'stream';
    await waitFor(() => feed.current.connection.kind === 'live', { what: 'live', timeoutMs: 10_000 });
  });

  it('never throws for an unreachable server (nothing listening)', async () => {
    const gone = await fakeServer();
    await gone.kill();
    const { feed } = start(gone.url);
    await waitFor(() => feed.current.connection.kind === 'down', { what: 'down', timeoutMs: 10_000 });
    expect(feed.current.snapshot).toBeNull();
    expect(feed.current.connection).toMatchObject({ reason: 'ECONNREFUSED' });
  });
});
