import { Console } from 'node:console';
import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { render } from 'ink-testing-library';
import { afterEach, describe, expect, it } from 'vitest';
import type { Snapshot } from '../../src/domain/snapshot.js';
import { App } from '../../src/tui/App.js';
import type { FeedState } from '../../src/tui/feed.js';
import { runDashboard } from '../../src/tui/run.js';
import { waitFor } from '../support/service.js';
import { dlqSnapshot, NOW } from './fixtures.js';

/** The App against a stand-in feed (snapshots pushed by the test) or runDashboard against a stand-in server. */

const okActions = { retryDlq: async () => ({ ok: true, message: '' }), retryDlqMany: async () => ({ ok: true, message: '' }), resetBreaker: async () => ({ ok: true, message: '' }), setPaused: async () => ({ ok: true, message: '' }) };

class PushFeed {
  current: FeedState;
  private listeners = new Set<(state: FeedState) => void>();
  constructor(snapshot: Snapshot) {
    this.current = { snapshot, receivedAt: NOW, connection: { kind: 'live', via: 'stream', since: NOW } };
  }
  subscribe(listener: (state: FeedState) => void) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  push(snapshot: Snapshot) {
    this.current = { ...this.current, snapshot, receivedAt: NOW + 1_000 };
    for (const l of this.listeners) l(this.current);
  }
}

const tick = (ms = 60) => new Promise((r) => setTimeout(r, ms));

describe('selection', () => {
  it('stays on the highlighted DLQ entry when a new one arrives on top before any key was pressed', async () => {
    const first = dlqSnapshot(3);
    const feed = new PushFeed(first);
    const ui = render(<App feed={feed} actions={okActions} url="http://127.0.0.1:8080" size={{ columns: 100, rows: 30 }} clock={() => NOW} />);
    await waitFor(() => /› dlq_entry00000/.test(ui.lastFrame() ?? ''), { what: 'the first entry highlighted', timeoutMs: 5_000, intervalMs: 20 });
    const next = dlqSnapshot(4);
    next.dlq!.newest = [{ ...first.dlq!.newest[0]!, id: 'dlq_NEWENTRY', host: 'new.example' }, ...first.dlq!.newest];
    feed.push(next);
    await waitFor(() => (ui.lastFrame() ?? '').includes('dlq_NEWENTRY'), { what: 'the new entry', timeoutMs: 5_000, intervalMs: 20 });
    expect(ui.lastFrame()).toMatch(/› dlq_entry00000/);
    ui.stdin.write('r');
    await waitFor(() => /\(y\/n\)/.test(ui.lastFrame() ?? ''), { what: 'the prompt', timeoutMs: 5_000, intervalMs: 20 });
    expect(ui.lastFrame()).toContain('Retry DLQ entry dlq_entry00000 (site-0.example, NAVIGATION_TIMEOUT)? (y/n)');
    ui.unmount();
  });
});

/** Enough of a terminal for Ink. */
class FakeStdout extends EventEmitter {
  isTTY = true;
  columns = 100;
  rows = 30;
  written = '';
  write = (data: string) => {
    this.written += data;
    return true;
  };
}
class FakeStdin extends EventEmitter {
  isTTY = true;
  private data: string | null = null;
  write(data: string) {
    this.data = data;
    this.emit('readable');
  }
  read = () => {
    const { data } = this;
    this.data = null;
    return data;
  };
  setEncoding() {}
  setRawMode() {}
  resume() {}
  pause() {}
  ref() {}
  unref() {}
}

describe('quitting', () => {
  let server: Server | undefined;
  afterEach(() => {
    server?.closeAllConnections();
    server?.close();
  });

  it('ends the poll and an action still waiting for the server at once, and restores the screen before the abort returns', async () => {
    // No event stream (so the feed polls); snapshots are answered until the pause is sent, then
    // nothing is: every later poll and the pause hang, as on a server that stopped answering. The
    // test follows the server, not the screen: with CI set (as in CI), Ink draws only the last frame.
    const open = new Set<IncomingMessage>();
    let answered = 0;
    let hangingPolls = 0;
    let paused = false;
    server = createServer((req, res) => {
      if (req.url === '/admin/events') return void res.writeHead(404).end();
      if (req.url === '/admin/snapshot' && !paused) {
        answered++;
        return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(dlqSnapshot(2)));
      }
      if (req.url === '/admin/snapshot') hangingPolls++;
      if (req.method === 'POST') paused = true;
      open.add(req);
      req.on('close', () => open.delete(req));
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const stdout = new FakeStdout();
    const stdin = new FakeStdin();
    const quit = new AbortController();
    // runDashboard patches the console (through console.Console, which vitest's console lacks).
    (console as { Console?: typeof Console }).Console ??= Console;
    const done = runDashboard({ url, stdin: stdin as never, stdout: stdout as never, stderr: new FakeStdout() as never, color: false, signal: quit.signal });
    await waitFor(() => answered > 0, { what: 'the first snapshot', timeoutMs: 10_000, intervalMs: 20 });
    // Pause (p, then y to confirm) until the server sees it: the first keys may come before the
    // dashboard has read its first snapshot.
    await waitFor(
      async () => {
        stdin.write('p');
        await tick();
        stdin.write('y');
        await new Promise((r) => setTimeout(r, 100));
        return paused;
      },
      { what: 'the pause to reach the server', timeoutMs: 10_000, intervalMs: 20 },
    );
    await waitFor(() => hangingPolls > 0, { what: 'a poll waiting for the server', timeoutMs: 10_000, intervalMs: 20 });
    expect(open.size).toBeGreaterThanOrEqual(2);

    quit.abort();
    expect(stdout.written.endsWith('\x1b[?25h\x1b[?1049l')).toBe(true);
    expect(await done).toBe(0);
    // Well under the 5 s poll and 10 s action timeouts.
    await waitFor(() => open.size === 0, { what: 'every request to end', timeoutMs: 1_000, intervalMs: 20 });
  });
});

describe('top --once against a failing server', () => {
  it('prints the problem detail without its control characters', async () => {
    const server = createServer((_req, res) => void res.writeHead(500, { 'content-type': 'application/problem+json' }).end(JSON.stringify({ code: 'X', detail: 'upstream said \x1b]0;PWNED\x07\x1b[2Jno' })));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { runTop } = await import('../../src/commands/top.js');
    const written: string[] = [];
    const write = process.stderr.write;
    process.stderr.write = ((chunk: string) => written.push(String(chunk)) > 0) as typeof write;
    try {
      expect(await runTop({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, once: true })).toBe(1);
    } finally {
      process.stderr.write = write;
      server.close();
    }
    expect(written.join('')).toBe('wcagai: upstream said ]0;PWNED[2Jno\n');
  });
});
