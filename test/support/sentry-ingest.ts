import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

export interface SentryEvent {
  tags?: Record<string, string>;
  release?: string;
  environment?: string;
  exception?: { values?: Array<{ type?: string; value?: string; stacktrace?: { frames?: unknown[] } }> };
  contexts?: { trace?: { trace_id?: string; span_id?: string } };
}

export interface Received {
  path: string;
  auth: string;
  events: SentryEvent[];
}

export interface SentryIngest {
  /** A DSN pointing here (`http://publickey@127.0.0.1:PORT/1`). */
  dsn: string;
  /** Every envelope received, in order. */
  readonly received: Received[];
  /** Every event of every envelope. */
  events(): SentryEvent[];
  close(): Promise<void>;
}

/** Parses an envelope: one JSON header line, then item header + payload pairs. */
function parseEnvelope(body: string): SentryEvent[] {
  const lines = body.split('\n').filter(Boolean);
  const events: SentryEvent[] = [];
  for (let i = 1; i + 1 < lines.length; i += 2) {
    const header = JSON.parse(lines[i]!) as { type: string };
    if (header.type === 'event') events.push(JSON.parse(lines[i + 1]!) as SentryEvent);
  }
  return events;
}

/** A stand-in for Sentry's ingest on loopback: accepts envelopes and keeps what they held. */
export async function startSentryIngest(): Promise<SentryIngest> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let raw = Buffer.concat(chunks);
      if (req.headers['content-encoding'] === 'gzip') raw = gunzipSync(raw);
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      // The SDK authenticates in the query string (or, in older versions, an X-Sentry-Auth header).
      const auth = url.searchParams.get('sentry_key') ?? String(req.headers['x-sentry-auth'] ?? '');
      received.push({ path: url.pathname, auth, events: parseEnvelope(raw.toString('utf8')) });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    dsn: `http://publickey@127.0.0.1:${(server.address() as AddressInfo).port}/1`,
    received,
    events: () => received.flatMap((r) => r.events),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
