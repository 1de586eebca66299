import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const dist = (path: string) => pathToFileURL(join(import.meta.dirname, '../../dist', path)).href;

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  lines: Array<Record<string, any>>;
  stdout: string;
  stderr: string;
  ms: number;
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'wcagai-lifecycle-'));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/**
 * Runs a small ESM script against the compiled lifecycle, logger and context modules. `body` sees
 * `logger`, `runWithContext`, `install(shutdown, options?)` and `ready()` (prints READY once the handlers are in).
 */
function runScript(name: string, body: string, signals: Array<[NodeJS.Signals, number]> = []): Promise<Run> {
  const file = join(dir, `${name}.mjs`);
  writeFileSync(
    file,
    `import { installProcessHandlers } from ${JSON.stringify(dist('app/lifecycle.js'))};
import { createLogger } from ${JSON.stringify(dist('observability/logger.js'))};
import { runWithContext } from ${JSON.stringify(dist('observability/context.js'))};
const logger = createLogger({ level: 'info' });
const install = (shutdown, options) => installProcessHandlers(logger, shutdown, undefined, options);
const ready = () => process.stderr.write('READY\\n');
${body}
`,
  );
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString('utf8');
      if (stderr.includes('READY') && signals.length) {
        for (const [signal, delay] of signals.splice(0)) setTimeout(() => child.kill(signal), delay);
      }
    });
    const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.once('exit', (code, signal) => {
      clearTimeout(killer);
      const lines = stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, any>);
      resolve({ code, signal, lines, stdout, stderr, ms: Date.now() - started });
    });
  });
}

const crashes = (run: Run) => run.lines.filter((l) => String(l.msg).startsWith('💥'));

describe('installProcessHandlers', () => {
  it('logs an uncaught exception with 💥 and the request id, shuts down gracefully and exits 1', async () => {
    const run = await runScript(
      'uncaught-in-request',
      `install(async (reason) => { logger.info({ event: 'test.shutdown', reason }, 'shutdown ran'); });
setInterval(() => {}, 1_000);
runWithContext({ requestId: 'req-crash-1', jobId: 'scan_job9' }, () => setTimeout(() => { throw new Error('kaboom in a handler'); }, 20));`,
    );
    expect(run.code, run.stdout + run.stderr).toBe(1);
    const [crash, ...more] = crashes(run);
    expect(more).toEqual([]);
    expect(crash).toMatchObject({ level: 60, event: 'process.uncaughtException', requestId: 'req-crash-1', jobId: 'scan_job9', msg: '💥 uncaught exception: kaboom in a handler' });
    expect(crash!.err.stack).toMatch(/kaboom in a handler\n\s+at /);
    expect(run.lines.find((l) => l.event === 'test.shutdown')).toMatchObject({ reason: 'uncaughtException' });
    expect(run.lines.some((l) => l.event === 'shutdown.done')).toBe(true);
    // Logged once, as a JSON line: no second, default crash report on stderr.
    expect(run.stderr).not.toContain('kaboom');
  });

  it('runs the shutdown after an uncaught exception outside the request that threw: its lines carry no request or job id', async () => {
    const run = await runScript(
      'uncaught-shutdown-context',
      `install(async (reason) => { await new Promise((r) => setTimeout(r, 20)); logger.info({ event: 'test.shutdown', reason }, 'shutdown ran'); });
setInterval(() => {}, 1_000);
runWithContext({ requestId: 'req-crash-2', jobId: 'scan_job10' }, () => setTimeout(() => { throw new Error('kaboom again'); }, 20));`,
    );
    expect(run.code, run.stdout + run.stderr).toBe(1);
    expect(crashes(run)).toEqual([expect.objectContaining({ requestId: 'req-crash-2', jobId: 'scan_job10' })]);
    const shutdownLines = run.lines.filter((l) => ['shutdown.start', 'test.shutdown', 'shutdown.done'].includes(l.event));
    expect(shutdownLines.map((l) => l.event)).toEqual(['shutdown.start', 'test.shutdown', 'shutdown.done']);
    // A grep for the request id finds the crash, not the whole shutdown of the process.
    for (const line of shutdownLines) {
      expect(line, line.event).not.toHaveProperty('requestId');
      expect(line, line.event).not.toHaveProperty('jobId');
    }
  });

  it('logs an uncaught exception outside any request without a request id, and exits 1', async () => {
    const run = await runScript('uncaught-plain', `install(async () => {});\nsetInterval(() => {}, 1_000);\nsetTimeout(() => { throw new TypeError('plain failure'); }, 20);`);
    expect(run.code).toBe(1);
    const [crash] = crashes(run);
    expect(crash).toMatchObject({ event: 'process.uncaughtException', msg: '💥 uncaught exception: plain failure' });
    expect(crash).not.toHaveProperty('requestId');
  });

  it('exits 1 when the graceful shutdown after an uncaught exception fails', async () => {
    const run = await runScript('uncaught-shutdown-fails', `install(async () => { throw new Error('close failed'); });\nsetInterval(() => {}, 1_000);\nsetTimeout(() => { throw new Error('first'); }, 20);`);
    expect(run.code).toBe(1);
    expect(run.lines.some((l) => l.event === 'shutdown.error')).toBe(true);
  });

  it('logs an unhandled rejection with 💥 and the request id, and carries on', async () => {
    const run = await runScript(
      'unhandled',
      `install(async () => {});
runWithContext({ requestId: 'req-reject-7' }, () => setTimeout(() => { Promise.reject(new Error('nobody caught me')); }, 10));
setTimeout(() => { logger.info({ event: 'test.alive' }, 'still running'); }, 300);`,
    );
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(crashes(run)).toEqual([expect.objectContaining({ level: 50, event: 'process.unhandledRejection', requestId: 'req-reject-7', msg: '💥 unhandled rejection: nobody caught me' })]);
    expect(run.lines.some((l) => l.event === 'test.alive')).toBe(true);
  });

  it('writes the 💥 lines with the credentials of a URL their error quotes masked, message included', async () => {
    const run = await runScript(
      'crash-quotes-url',
      `install(async () => {});
setInterval(() => {}, 1_000);
Promise.reject(new Error('fetch failed for https://ops:pw-in-url@api.example/v1?token=tok-in-query'));
setTimeout(() => { throw new Error('boom at https://api.example/?api_key=key-in-query'); }, 50);`,
    );
    expect(run.code).toBe(1);
    const lines = crashes(run);
    expect(lines.map((l) => l.msg)).toEqual([
      '💥 unhandled rejection: fetch failed for https://[redacted]@api.example/v1?token=[redacted]',
      '💥 uncaught exception: boom at https://api.example/?api_key=[redacted]',
    ]);
    for (const secret of ['pw-in-url', 'tok-in-query', 'key-in-query']) expect(run.stdout + run.stderr).not.toContain(secret);
  });

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`${signal} runs the shutdown and exits 0`, async () => {
      const run = await runScript(
        `signal-${signal}`,
        `install(async (reason) => { await new Promise((r) => setTimeout(r, 200)); logger.info({ event: 'test.shutdown', reason }, 'closed'); });\nsetInterval(() => {}, 1_000);\nready();`,
        [[signal, 0]],
      );
      expect(run.code, run.stdout + run.stderr).toBe(0);
      expect(run.lines.find((l) => l.event === 'test.shutdown')).toMatchObject({ reason: signal });
      expect(run.lines.map((l) => l.event).filter((e) => String(e).startsWith('shutdown.'))).toEqual(['shutdown.start', 'shutdown.done']);
    });
  }

  it('a second signal forces the exit while the shutdown is still running', async () => {
    const run = await runScript('second-signal', `install(() => new Promise(() => {}));\nsetInterval(() => {}, 1_000);\nready();`, [
      ['SIGTERM', 0],
      ['SIGINT', 400],
    ]);
    expect(run.code).toBe(1);
    expect(run.ms).toBeLessThan(5_000);
    expect(run.lines.find((l) => l.event === 'shutdown.forced')).toMatchObject({ reason: 'SIGINT' });
  });

  it('an uncaught exception while a signal\'s shutdown runs lets that shutdown finish, then exits 1', async () => {
    // The shutdown throws from a timer halfway (a connection closed under a pending call), then
    // still has work to do: releasing scans and closing the browser must not be cut short.
    const run = await runScript(
      'uncaught-during-shutdown',
      `install(async () => {
  setTimeout(() => { throw new Error('thrown while closing'); }, 100);
  await new Promise((r) => setTimeout(r, 600));
  logger.info({ event: 'test.closed' }, 'closed everything');
});
setInterval(() => {}, 1_000);
ready();`,
      [['SIGTERM', 0]],
    );
    expect(run.code, run.stdout + run.stderr).toBe(1);
    expect(crashes(run).map((l) => l.msg)).toEqual(['💥 uncaught exception: thrown while closing']);
    expect(run.lines.some((l) => l.event === 'shutdown.forced')).toBe(false);
    expect(run.lines.find((l) => l.event === 'test.closed')).toBeDefined();
    expect(run.lines.map((l) => l.event).filter((e) => String(e).startsWith('shutdown.'))).toEqual(['shutdown.start', 'shutdown.continues', 'shutdown.done']);
  });

  it('exits 1 when a shutdown outlives forceAfterMs, without a second signal', async () => {
    const run = await runScript('shutdown-hangs', `install(() => new Promise(() => {}), { forceAfterMs: 600 });\nsetInterval(() => {}, 1_000);\nready();`, [['SIGTERM', 0]]);
    expect(run.code).toBe(1);
    expect(run.ms).toBeLessThan(5_000);
    expect(run.lines.find((l) => l.event === 'shutdown.timeout')).toMatchObject({ level: 50, reason: 'SIGTERM', forceAfterMs: 600 });
  });

  it('does not force anything when the shutdown finishes in time', async () => {
    const run = await runScript('shutdown-in-time', `install(() => new Promise((r) => setTimeout(r, 100)), { forceAfterMs: 5_000 });\nsetInterval(() => {}, 1_000);\nready();`, [['SIGTERM', 0]]);
    expect(run.code).toBe(0);
    expect(run.ms).toBeLessThan(4_000);
    expect(run.lines.some((l) => l.event === 'shutdown.timeout')).toBe(false);
  });
});
