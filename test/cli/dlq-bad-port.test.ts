import { describe, expect, it } from 'vitest';
import { runCli } from './run-cli.js';

/**
 * `wcagai dlq … --url` on a port fetch refuses before connecting (the Fetch standard's "bad
 * ports": 6000, 6666, 10080…): one line saying so, exit 1, not "fetch failed". The admin
 * commands on the shared API client (breakers, alerts, queue) say it alike.
 */

const refused = (port: number) => `port ${port} is one that HTTP clients refuse to connect to (a "bad port" of the Fetch standard): choose another port`;

describe('a --url on a port fetch refuses', () => {
  it('dlq list and stats say so in one line naming the port, exit 1', async () => {
    const runs = await Promise.all([
      runCli(['dlq', 'list', '--url', 'http://127.0.0.1:6000/', '--token', 't']),
      runCli(['dlq', 'stats', '--url', 'http://127.0.0.1:6666', '--token', 't']),
    ]);
    expect(runs.map((r) => [r.code, r.stdout, r.stderr])).toEqual([
      [1, '', `wcagai: cannot reach the wcagai server at http://127.0.0.1:6000: ${refused(6000)}\n`],
      [1, '', `wcagai: cannot reach the wcagai server at http://127.0.0.1:6666: ${refused(6666)}\n`],
    ]);
  });

  it('breakers list says it alike', async () => {
    const run = await runCli(['breakers', 'list', '--url', 'http://127.0.0.1:10080', '--token', 't']);
    expect([run.code, run.stdout, run.stderr]).toEqual([1, '', `wcagai: cannot reach the wcagai server at http://127.0.0.1:10080: ${refused(10080)}\n`]);
  });
});
