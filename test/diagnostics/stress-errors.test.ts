import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliRun } from '../cli/run-cli.js';

/**
 * `wcagai stress` refusals that come before anything starts: one line on stderr naming what is
 * wrong and where it was given (the scenario file and field, or the flag), exit 1, nothing on stdout.
 */

let tmp: string;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'wcagai-stress-errors-'));
});

afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

// No Redis is reachable at this address: a refusal must come before the stack would need one.
const ENV = { REDIS_URL: 'redis://127.0.0.1:1' };

function stress(args: string[]): Promise<CliRun> {
  return runCli(['stress', ...args], { env: ENV, timeoutMs: 60_000 });
}

function expectOneLine(run: CliRun): string {
  expect(run.code).toBe(1);
  expect(run.stdout).toBe('');
  const lines = run.stderr.trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  return lines[0]!;
}

describe('wcagai stress refusals', () => {
  it('names the file and field of a stack.settings value the configuration refuses, on one line', async () => {
    const file = join(tmp, 'bad-setting.json');
    await writeFile(file, JSON.stringify({ name: 'bad-setting', duration: '5s', pages: ['/clean.html'], stack: { settings: { MAX_QUEUE_DEPTH: 'abc' } } }));
    const line = expectOneLine(await stress(['--scenario', file]));
    expect(line).toBe(`wcagai: ${file}: stack.settings.MAX_QUEUE_DEPTH="abc": expected an integer`);
  });

  it('blames --url, not the scenario file, for a URL with a path', async () => {
    const line = expectOneLine(await stress(['--url', 'http://127.0.0.1:9/api', '--duration', '5s']));
    expect(line).toBe('wcagai: --url expects the base URL of a deployment with no path and no user:password@ (the key goes in --token), such as https://wcagai.internal, got "http://127.0.0.1:9/api"');
    expect(line).not.toMatch(/100-concurrent-scans/);
  });

  it('says a --url on a port HTTP clients refuse (fetch\'s "bad port") is one, naming it, not "fetch failed"', async () => {
    const lines = await Promise.all([6000, 10080].map(async (port) => expectOneLine(await stress(['--url', `http://127.0.0.1:${port}`, '--duration', '5s']))));
    expect(lines).toEqual(
      [6000, 10080].map((port) => `wcagai: target http://127.0.0.1:${port} is unreachable: port ${port} is one that HTTP clients refuse to connect to (a "bad port" of the Fetch standard): choose another port`),
    );
  });
});
