import { describe, expect, it } from 'vitest';
import { networkMessage } from '../../src/tui/client.js';
import { runCli } from '../cli/run-cli.js';

/**
 * `wcagai top --url` on a port fetch refuses before connecting (the Fetch standard's "bad ports":
 * 6000, 6666, 10080…): one line saying so, exit 1, never fetch's bare "bad port" or "fetch failed".
 */

const refused = (port: number) => `port ${port} is one that HTTP clients refuse to connect to (a "bad port" of the Fetch standard): choose another port`;

describe('a --url on a port fetch refuses', () => {
  it('top --once says so in one line naming the port, exit 1', async () => {
    const runs = await Promise.all([6666, 10080].map((port) => runCli(['top', '--once', '--url', `http://127.0.0.1:${port}/`, '--token', 't'])));
    for (const [i, port] of [6666, 10080].entries()) {
      const run = runs[i]!;
      expect(run.code, run.stderr).toBe(1);
      expect(run.stdout).toBe('');
      expect(run.stderr).toBe(`wcagai: cannot reach http://127.0.0.1:${port}: ${refused(port)}\n`);
    }
  });

  it('networkMessage explains fetch\'s refusal, with the port when the URL is given (the live view gives none)', async () => {
    const err = await fetch('http://127.0.0.1:6000/').catch((e: unknown) => e);
    expect(networkMessage(err, 'http://127.0.0.1:6000')).toBe(refused(6000));
    expect(networkMessage(err)).toBe('its port is one that HTTP clients refuse to connect to (a "bad port" of the Fetch standard): choose another port');
  });
});
