import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Report } from '../../src/domain/scan.js';
import { page, startFixtureServer, type FixtureServer } from '../support/fixture-server.js';
import { runCli } from './run-cli.js';

/** `wcagai scan --baseline` against a report of another scope. Needs `npm run build`. */

let server: FixtureServer;
let tmp: string;
let baseline: string;

beforeAll(async () => {
  server = await startFixtureServer();
  // An unnamed button shown only on wide screens: found at the default width, not at 375 px.
  server.html('/wide-only.html', page('<style>@media (max-width:600px){#wide{display:none}}</style><main><h1>Wide</h1></main><button id="wide" style="width:48px;height:48px"></button>'));
  tmp = await mkdtemp(join(tmpdir(), 'wcagai-scope-'));
  baseline = join(tmp, 'baseline.json');
  const first = await runCli(['scan', '--format', 'json', '--output', baseline, server.url('/wide-only.html')]);
  if (first.code !== 2) throw new Error(`baseline scan: exit ${first.code}: ${first.stderr}`);
});

afterAll(async () => {
  await server?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('wcagai scan --baseline with another scope', () => {
  it('says once on stderr that nothing is reported as fixed, naming what differs', async () => {
    const narrow = await runCli(['scan', '--format', 'json', '--viewport', '375x667', '--baseline', baseline, server.url('/wide-only.html')]);
    expect(narrow.code, narrow.stderr).toBe(0);
    expect(narrow.stderr).toBe(`wcagai: baseline ${baseline} was made with another scope (viewport 1280x1024 there, 375x667 now): issues missing now are not reported as fixed\n`);
    expect((JSON.parse(narrow.stdout) as Report).pages[0]!.fixed).toEqual([]);

    const included = await runCli(['scan', '--format', 'json', '--include', 'main', '--exclude', 'h1', '--baseline', baseline, server.url('/wide-only.html')]);
    expect(included.code, included.stderr).toBe(0);
    expect(included.stderr).toBe(`wcagai: baseline ${baseline} was made with another scope (--include none there, "main" now; --exclude none there, "h1" now): issues missing now are not reported as fixed\n`);
  });

  it('says nothing with the same scope, the default window spelled out included', async ({ expect }) => {
    const same = await runCli(['scan', '--format', 'json', '--viewport', '1280x1024', '--baseline', baseline, server.url('/wide-only.html')]);
    expect(same.code, same.stderr).toBe(0);
    expect(same.stderr).toBe('');
    expect((JSON.parse(same.stdout) as Report).pages[0]!.violations.flatMap((v) => v.nodes.map((n) => n.baseline))).toEqual(['persisting']);
  });
});
