/**
 * Hostile input, part 4: slow and oversized clients against a real `wcagai serve --no-worker`
 * process with its default HTTP limits (src/http/server.ts: headersTimeout, requestTimeout,
 * maxHeaderSize, BODY_LIMIT). All attacks run at once:
 *
 * - 500 idle connections that never send a byte;
 * - 50 slow-loris clients sending one header byte a second;
 * - 20 slow bodies (headers complete, then one body byte a second);
 * - 20 requests with a 20 KB header; 20 bodies over the limit (declared and chunked).
 *
 * Each must be bounded by a server timeout or limit (connection closed, 408, 413 or 431 as
 * problem+json), while a normal client keeps being served: its success rate and p95 latency
 * during the attack are recorded.
 */
import { Agent, request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { recordResult } from './results.js';
import { parseRawResponse, percentile } from './support/hostile-http.js';
import { problemIssues } from './support/hostile-problem.js';
import { startServe, type ServeProcess } from './support/hostile-serve.js';

const COMMAND = 'npx vitest run --config vitest.reliability.config.ts test/reliability/slow-clients.test.ts';
/** The server's limits (src/http/server.ts, config BODY_LIMIT) this file expects to see enforced. */
const HEADERS_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 30_000;
/** How late a timeout may fire, and how long "at once" may take: the server sweeps expired connections every second, and the machine is shared. */
const SLACK_MS = 10_000;
/** "At once" for oversized requests: about a second on a quiet machine, far longer with 600 attacking connections on a busy one. */
const AT_ONCE_MS = 20_000;

let redis: RedisServer;
let serve: ServeProcess;

beforeAll(async () => {
  redis = await startRedisServer();
  serve = await startServe({ redisUrl: redis.url, env: { ALERTS_ENABLED: 'false' } });
}, 90_000);

afterAll(async () => {
  await serve?.stop();
  await redis?.close();
});

interface Outcome {
  /** ms from connect until the server closed the connection (null: still open at the end). */
  closedAfterMs: number | null;
  status: number | null;
  problemIssues: string[];
}

/** One attacking connection: `script` writes to it; the outcome says when and how the server ended it. */
function attack(port: number, script: (socket: Socket, stop: () => boolean) => Promise<void> | void, giveUpMs: number): Promise<Outcome> {
  return new Promise((resolve) => {
    const started = performance.now();
    const socket = connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const res = parseRawResponse(Buffer.concat(chunks).toString('latin1'));
      resolve({
        closedAfterMs: closed ? Math.round(performance.now() - started) : null,
        status: res?.status ?? null,
        problemIssues: res && res.status >= 400 ? problemIssues(res.status, res.headers, res.body) : [],
      });
    };
    const timer = setTimeout(() => finish(false), giveUpMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('close', () => finish(true));
    socket.on('error', () => finish(true));
    socket.on('connect', () => void script(socket, () => done));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Writes `bytes` one at a time, a second apart, until the server closes the connection. */
async function trickle(socket: Socket, stop: () => boolean, bytes: string): Promise<void> {
  for (const ch of bytes) {
    if (stop() || socket.destroyed) return;
    socket.write(ch);
    await sleep(1_000);
  }
}

function summary(outcomes: Outcome[]) {
  const closed = outcomes.map((o) => o.closedAfterMs).filter((v): v is number => v !== null);
  const statuses: Record<string, number> = {};
  for (const o of outcomes) statuses[String(o.status ?? 'none')] = (statuses[String(o.status ?? 'none')] ?? 0) + 1;
  return {
    connections: outcomes.length,
    closedByServer: closed.length,
    maxMsToClose: closed.length ? Math.max(...closed) : null,
    p50MsToClose: closed.length ? percentile(closed, 50) : null,
    statuses,
    invalidProblems: outcomes.filter((o) => o.problemIssues.length > 0).length,
  };
}

describe('slow and oversized clients', () => {
  it('are cut off by the server limits while a normal client keeps being served', async () => {
    const port = serve.port;
    const giveUp = REQUEST_TIMEOUT_MS + 15_000;

    // A normal client: one request every 50 ms on a keep-alive connection, for the whole attack.
    const agent = new Agent({ keepAlive: true, maxSockets: 2 });
    const normal = { sent: 0, ok: 0, latencies: [] as number[], errors: [] as string[] };
    let attacking = true;
    const normalLoop = (async () => {
      for (let i = 0; attacking && i < 10_000; i++) {
        const started = performance.now();
        const status = await new Promise<number>((resolve) => {
          const req = request({ host: '127.0.0.1', port, path: i % 2 ? '/api/queue' : '/health/live', agent, timeout: 10_000 }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          });
          req.on('timeout', () => req.destroy(new Error('timeout')));
          req.on('error', (err) => {
            if (normal.errors.length < 5) normal.errors.push(err.message);
            resolve(0);
          });
          req.end();
        });
        normal.sent++;
        if (status === 200) normal.ok++;
        normal.latencies.push(performance.now() - started);
        await sleep(50);
      }
    })();

    // Let the baseline settle, then start every attack at once.
    await sleep(1_000);
    const idle = Array.from({ length: 500 }, () => attack(port, () => undefined, giveUp));
    const loris = Array.from({ length: 50 }, (_, i) => attack(port, (s, stop) => trickle(s, stop, `GET /health HTTP/1.1\r\nHost: x\r\nX-Slow-${i}: ${'a'.repeat(60)}\r\n\r\n`), giveUp));
    const slowBody = Array.from({ length: 20 }, () =>
      attack(
        port,
        async (s, stop) => {
          s.write('POST /api/scans HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"url":"');
          await trickle(s, stop, 'h'.repeat(200));
        },
        giveUp,
      ),
    );
    const hugeHeaders = Array.from({ length: 20 }, () => attack(port, (s) => void s.write(`GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(20_000)}\r\n\r\n`), AT_ONCE_MS + 5_000));
    const declaredTooBig = Array.from({ length: 10 }, () =>
      attack(port, (s) => void s.write(`POST /api/scans HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 200000\r\n\r\n{"url":"${'x'.repeat(70_000)}`), AT_ONCE_MS + 5_000),
    );
    const chunkedTooBig = Array.from({ length: 10 }, () =>
      attack(
        port,
        async (s, stop) => {
          s.write('POST /api/scans HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n');
          for (let i = 0; i < 40 && !stop(); i++) {
            s.write(`1000\r\n${'y'.repeat(4096)}\r\n`);
            await sleep(20);
          }
        },
        AT_ONCE_MS + 5_000,
      ),
    );

    const [idleOut, lorisOut, slowBodyOut, hugeOut, declaredOut, chunkedOut] = await Promise.all([idle, loris, slowBody, hugeHeaders, declaredTooBig, chunkedTooBig].map((group) => Promise.all(group)));
    attacking = false;
    await normalLoop;
    agent.destroy();
    const health = await fetch(`${serve.base}/health`);

    const figures = {
      limits: { headersTimeoutMs: HEADERS_TIMEOUT_MS, requestTimeoutMs: REQUEST_TIMEOUT_MS, maxHeaderBytes: 16_384, bodyLimitBytes: 65_536 },
      idleConnections: summary(idleOut!),
      slowLorisHeaders: summary(lorisOut!),
      slowBodies: summary(slowBodyOut!),
      hugeHeaders: summary(hugeOut!),
      declaredBodyOverLimit: summary(declaredOut!),
      chunkedBodyOverLimit: summary(chunkedOut!),
      normalClient: {
        requests: normal.sent,
        successRate: Math.round((normal.ok / Math.max(1, normal.sent)) * 10_000) / 100,
        p50Ms: Math.round(percentile(normal.latencies, 50) * 10) / 10,
        p95Ms: Math.round(percentile(normal.latencies, 95) * 10) / 10,
        maxMs: Math.round(Math.max(...normal.latencies)),
        errors: normal.errors,
      },
      healthAfter: health.status,
      command: COMMAND,
    };
    recordResult('slow-clients', figures);

    const headerBound = HEADERS_TIMEOUT_MS + SLACK_MS;
    // Idle and slow-loris connections: closed with a 408 once the header deadline passes.
    for (const [what, outcomes] of [['idle', idleOut!], ['slow-loris', lorisOut!]] as const) {
      expect(outcomes.every((o) => o.closedAfterMs !== null && o.closedAfterMs <= headerBound), `${what}: ${JSON.stringify(summary(outcomes))}`).toBe(true);
      expect(outcomes.every((o) => o.status === null || o.status === 408), what).toBe(true);
    }
    // Slow bodies: closed with a 408 at the request deadline.
    expect(slowBodyOut!.every((o) => o.closedAfterMs !== null && o.closedAfterMs <= REQUEST_TIMEOUT_MS + SLACK_MS && o.status === 408), JSON.stringify(summary(slowBodyOut!))).toBe(true);
    // Oversized: refused at once.
    expect(hugeOut!.every((o) => o.status === 431 && o.closedAfterMs !== null && o.closedAfterMs < AT_ONCE_MS), JSON.stringify(summary(hugeOut!))).toBe(true);
    expect([...declaredOut!, ...chunkedOut!].every((o) => o.status === 413 && o.closedAfterMs !== null && o.closedAfterMs < AT_ONCE_MS), JSON.stringify([summary(declaredOut!), summary(chunkedOut!)])).toBe(true);
    // Every answer the attackers got is a problem.
    const allOutcomes = [idleOut!, lorisOut!, slowBodyOut!, hugeOut!, declaredOut!, chunkedOut!].flat();
    expect(allOutcomes.flatMap((o) => o.problemIssues)).toEqual([]);
    // The normal client was served throughout.
    expect(figures.normalClient.successRate).toBeGreaterThanOrEqual(99);
    expect(figures.normalClient.p95Ms).toBeLessThan(1_000);
    expect(health.status).toBe(200);
  });
});
