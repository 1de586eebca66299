import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { Snapshot } from '../../domain/snapshot.js';
import { WcagaiError } from '../../errors/catalogue.js';
import { Broadcaster, type Frame } from '../broadcaster.js';
import { methodGuard } from './method-guard.js';

export interface AdminEventsOptions {
  /** Computes one snapshot (see http/snapshot.ts); called at most once a second whatever the number of clients. */
  compute(): Promise<Snapshot>;
  intervalMs?: number;
  /** Comment lines that keep idle proxies from closing the stream (default 15 s). */
  heartbeatMs?: number;
  /** The `retry:` hint: how long EventSource-style clients wait before reconnecting (default 2 s). */
  retryMs?: number;
  /** Streams served at once (default 50); more get 503. */
  maxClients?: number;
  onError?: (err: unknown) => void;
}

/** What the routes expose to tests and the composition root. */
export interface AdminEvents {
  broadcaster: Broadcaster<Snapshot>;
  routes(app: FastifyInstance): void;
}

/**
 * `GET /admin/events`: server-sent events, one `snapshot` event a second, for `wcagai top`;
 * `GET /admin/snapshot`: one snapshot as JSON (polling fallback, `top --once`). Both read the same
 * shared broadcaster, so any number of clients costs one computation a second. Behind the admin
 * token like every /admin path.
 */
export function adminEvents(options: AdminEventsOptions): AdminEvents {
  const broadcaster = new Broadcaster(options.compute, { intervalMs: options.intervalMs ?? 1_000, ...(options.onError ? { onError: options.onError } : {}) });
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const retryMs = options.retryMs ?? 2_000;
  const maxClients = options.maxClients ?? 50;
  const open = new Set<() => void>();

  const routes = (app: FastifyInstance) => {
    // Streams never end by themselves: close them first, or app.close() would wait for them.
    app.addHook('preClose', async () => {
      for (const end of [...open]) end();
    });
    app.addHook('onClose', async () => broadcaster.stop());

    app.get('/admin/events', (request, reply) => {
      if (open.size >= maxClients) throw new WcagaiError('OVERLOADED', `at most ${maxClients} event streams at once; poll GET /admin/snapshot instead`, { details: { retryAfterSeconds: 10 } });
      reply.hijack();
      const res: ServerResponse = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        connection: 'keep-alive',
        // nginx and similar proxies would otherwise buffer the stream.
        'x-accel-buffering': 'no',
        'x-content-type-options': 'nosniff',
        'x-request-id': String(request.id),
      });
      if (request.method === 'HEAD') {
        res.end();
        return;
      }
      res.write(`retry: ${retryMs}\n: wcagai snapshots every ${options.intervalMs ?? 1_000} ms\n\n`);
      // A slow client skips snapshots rather than buffering them: the next one supersedes the last.
      let draining = false;
      const send = (frame: Frame<Snapshot>) => {
        if (draining || res.destroyed) return;
        if (!res.write(`id: ${frame.value.seq}\nevent: snapshot\ndata: ${frame.text}\n\n`)) {
          draining = true;
          res.once('drain', () => (draining = false));
        }
      };
      const heartbeat = setInterval(() => {
        if (!draining && !res.destroyed) res.write(`: ping\n\n`);
      }, heartbeatMs);
      heartbeat.unref();
      let unsubscribe: (() => void) | null = null;
      const end = () => {
        if (!open.delete(end)) return;
        clearInterval(heartbeat);
        unsubscribe?.();
        if (!res.writableEnded) res.end();
      };
      open.add(end);
      res.on('close', end);
      res.on('error', end);
      request.log.info({ event: 'admin.events.open', clients: open.size }, 'event stream opened');
      unsubscribe = broadcaster.subscribe(send);
    });
    methodGuard(app, '/admin/events', ['GET']);

    app.get('/admin/snapshot', async (_request, reply) => {
      const frame = await broadcaster.current();
      return reply.type('application/json; charset=utf-8').send(frame.text);
    });
    methodGuard(app, '/admin/snapshot', ['GET']);
  };
  return { broadcaster, routes };
}
