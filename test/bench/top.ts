/**
 * bench:top: what `wcagai top` costs. A `wcagai serve --no-worker` child on a private Redis with
 * 10 workers' heartbeats (written here every 5 s, as live workers would) and 1,000 DLQ entries;
 * then `top` in a real terminal (tmux) plus 4 more /admin/events clients for `--seconds` (60).
 * Reports top's CPU (share of one core) and RSS at start and end (sampled every 10 s), and the
 * server's CPU with the 5 clients against the same server idle (before and after, averaged).
 * Usage: `npm run bench:top [-- --seconds 60] [--idle 20] [--json]`.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { keysFor } from '../../src/queue/keys.js';
import { BIN, ROOT } from '../cli/run-cli.js';
import { startRedisServer } from '../support/redis-server.js';
import { waitFor } from '../support/service.js';
import { hasTmux, startTerminal } from '../support/terminal.js';
import { seedDlq, writeHeartbeats } from '../tui/fixtures.js';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  const n = i > 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} takes a positive number`);
  return n;
};
const SECONDS = arg('seconds', 60);
const IDLE_SECONDS = arg('idle', 20);
const json = process.argv.includes('--json');
const TOKEN = 'bench-top-admin-token-0123456789';
const CLK_TCK = 100;
const log = (line: string) => process.stderr.write(`${line}\n`);

/** CPU seconds (user + system) a process has used. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : NaN;
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** A raw event-stream reader (the other clients besides `top`). */
function reader(url: string): { events: () => number; close(): void } {
  const controller = new AbortController();
  let events = 0;
  void (async () => {
    try {
      const res = await fetch(url, { headers: { authorization: `Bearer ${TOKEN}`, accept: 'text/event-stream' }, signal: controller.signal });
      const r = res.body!.getReader();
      const decoder = new TextDecoder();
      for (;;) {
        const { done, value } = await r.read();
        if (done) break;
        events += decoder.decode(value, { stream: true }).split('event: snapshot').length - 1;
      }
    } catch {
      // closed
    }
  })();
  return { events: () => events, close: () => controller.abort() };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  if (!hasTmux()) throw new Error('bench:top needs tmux (top only runs in a terminal)');
  const redis = await startRedisServer();
  const prefix = `benchtop_${Date.now().toString(36)}`;
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const serve = spawn(process.execPath, [BIN, 'serve', '--no-worker', '--port', String(port)], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, REDIS_URL: redis.url, QUEUE_PREFIX: prefix, ADMIN_TOKEN: TOKEN, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const conn = new Redis(redis.url);
  const keys = keysFor(prefix);
  let heartbeats: NodeJS.Timeout | undefined;
  let term: Awaited<ReturnType<typeof startTerminal>> | undefined;
  const readers: Array<ReturnType<typeof reader>> = [];
  try {
    await waitFor(async () => (await fetch(`${url}/health/live`)).ok, { what: 'serve', timeoutMs: 30_000 });
    log('seeding 1,000 DLQ entries and 10 workers…');
    await seedDlq(conn, keys, 1_000);
    await writeHeartbeats(conn, keys, 10);
    heartbeats = setInterval(() => void writeHeartbeats(conn, keys, 10).catch(() => undefined), 5_000);
    await sleep(2_000);

    log(`server idle for ${IDLE_SECONDS} s…`);
    const idle0 = cpuSeconds(serve.pid!);
    await sleep(IDLE_SECONDS * 1000);
    const serverIdleBefore = ((cpuSeconds(serve.pid!) - idle0) / IDLE_SECONDS) * 100;

    term = await startTerminal(`exec node ${BIN} top --url ${url} --token ${TOKEN}`, { columns: 120, rows: 40, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' } });
    const topPid = await term.panePid();
    await term.waitFor(/live \(stream\)/, 30_000);
    for (let i = 0; i < 4; i++) readers.push(reader(`${url}/admin/events`));
    // Warm-up: module loading, JIT, first layouts, the readers' first snapshots.
    await sleep(15_000);
    log(`top and 4 more event-stream clients for ${SECONDS} s…`);
    const top0 = cpuSeconds(topPid);
    const server0 = cpuSeconds(serve.pid!);
    const started = Date.now();
    const rss: number[] = [rssMb(topPid)];
    const events0 = readers.map((r) => r.events());
    while (Date.now() - started < SECONDS * 1000) {
      await sleep(Math.min(10_000, SECONDS * 1000 - (Date.now() - started)));
      rss.push(rssMb(topPid));
    }
    const elapsed = (Date.now() - started) / 1000;
    const topCpu = ((cpuSeconds(topPid) - top0) / elapsed) * 100;
    const serverBusy = ((cpuSeconds(serve.pid!) - server0) / elapsed) * 100;
    const perClient = readers.map((r, i) => (r.events() - events0[i]!) / elapsed);
    const screen = await term.screen();
    // The server idle again (top and the readers gone): the baseline is the mean of before and after.
    await term.send('q', true);
    for (const r of readers) r.close();
    await sleep(3_000);
    const idle1 = cpuSeconds(serve.pid!);
    await sleep(IDLE_SECONDS * 1000);
    const serverIdleAfter = ((cpuSeconds(serve.pid!) - idle1) / IDLE_SECONDS) * 100;
    const serverIdle = (serverIdleBefore + serverIdleAfter) / 2;
    const result = {
      seconds: Math.round(elapsed),
      fleet: { workers: 10, dlqEntries: 1_000 },
      top: { cpuPercentOfOneCore: Math.round(topCpu * 100) / 100, rssMbStart: rss[0], rssMbEnd: rss[rss.length - 1], rssMbSamples: rss, budget: { cpuPercent: 5 } },
      server: {
        idleCpuPercent: Math.round(serverIdle * 100) / 100,
        idleCpuPercentBeforeAfter: [Math.round(serverIdleBefore * 100) / 100, Math.round(serverIdleAfter * 100) / 100],
        withClientsCpuPercent: Math.round(serverBusy * 100) / 100,
        extraCpuPercent: Math.round((serverBusy - serverIdle) * 100) / 100,
        clients: 5,
        snapshotsPerSecondPerClient: Math.round((perClient.reduce((a, b) => a + b, 0) / perClient.length) * 100) / 100,
        budget: { extraCpuPercent: 2 },
      },
      screenOk: /DLQ 1,000 entries/.test(screen) && /10 workers/.test(screen),
    };
    if (json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    else {
      process.stdout.write(
        [
          `wcagai top, ${result.seconds} s at one snapshot a second, 10 workers, 1,000 DLQ entries`,
          `  top CPU            ${result.top.cpuPercentOfOneCore}% of one core (budget 5%)`,
          `  top RSS            ${result.top.rssMbStart} MB -> ${result.top.rssMbEnd} MB (samples every 10 s: ${rss.join(', ')})`,
          `  server CPU idle    ${result.server.idleCpuPercent}% (before ${result.server.idleCpuPercentBeforeAfter[0]}%, after ${result.server.idleCpuPercentBeforeAfter[1]}%)`,
          `  server CPU, 5 SSE  ${result.server.withClientsCpuPercent}% (extra ${result.server.extraCpuPercent}%, budget 2%); ${result.server.snapshotsPerSecondPerClient} snapshots/s per client`,
          `  screen             ${result.screenOk ? 'showed the fleet' : 'DID NOT show the fleet'}`,
          '',
        ].join('\n'),
      );
    }
  } finally {
    clearInterval(heartbeats);
    for (const r of readers) r.close();
    if (term) {
      await term.send('q', true).catch(() => undefined);
      await sleep(500);
      await term.close();
    }
    serve.kill('SIGTERM');
    await new Promise((r) => (serve.exitCode === null ? serve.once('exit', r) : r(null)));
    conn.disconnect();
    await redis.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:top: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
