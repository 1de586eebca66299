import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeDirectory } from '../../src/config/files.js';
import { ConfigError, loadConfig, maskedConfig } from '../../src/config/load.js';
import { SECRET_KEYS } from '../../src/config/schema.js';
import { policyFromEnv } from '../../src/scanner/target-guard.js';
import { freePort } from '../support/net.js';
import { startRedisServer } from '../support/redis-server.js';
import { baseEnv } from '../support/service.js';

const BIN = fileURLToPath(new URL('../../bin/wcagai', import.meta.url));

/** Bad values and what the message must say about each. */
const BAD: Record<string, [string, RegExp]> = {
  PORT: ['eighty', /integer/],
  REDIS_URL: ['http://127.0.0.1:6379', /redis:\/\//],
  SHUTDOWN_TIMEOUT: ['soon', /duration/],
  LOG_LEVEL: ['loud', /fatal|info/],
  ALLOW_PRIVATE_TARGETS: ['maybe', /true or false/],
  WORKER_CONCURRENCY: ['0', />= 1/],
  ADMIN_TOKEN: ['short', /16 characters/],
  SENTRY_DSN: ['not a url', /URL/],
  NODE_ENV: ['staging', /production|development|test/],
  HTTP_KEEP_ALIVE_TIMEOUT: ['0s', /between 1s and 10m/],
};

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('reports every bad value at once, naming each variable and the expected form', () => {
    const env = Object.fromEntries(Object.entries(BAD).map(([k, [v]]) => [k, v]));
    const problems = problemsOf(() => loadConfig(env));
    expect(problems).toHaveLength(Object.keys(BAD).length);
    for (const [name, [value, expected]] of Object.entries(BAD)) {
      const line = problems.find((p) => p.startsWith(`${name}=`));
      expect(line, `${name} in ${problems.join('\n')}`).toBeDefined();
      expect(line).toMatch(expected);
      // Secrets are named but never shown.
      if ((SECRET_KEYS as readonly string[]).includes(name)) expect(line).not.toContain(value);
      else expect(line).toContain(JSON.stringify(value));
    }
    // The message, as printed, has one line per variable.
    expect(() => loadConfig(env)).toThrow(/invalid configuration:\n(\s+\w+=.*\n?){10}$/);
  });

  it('applies defaults, parses durations and lists, and treats empty strings as unset', () => {
    const config = loadConfig({ PORT: '', SHUTDOWN_TIMEOUT: '15s', RATE_LIMIT_WINDOW: '1500ms', API_KEYS: ' a-key , b-key ,, ', ALLOW_PRIVATE_TARGETS: 'yes' });
    expect(config.PORT).toBe(8080);
    expect(config.SHUTDOWN_TIMEOUT).toBe(15_000);
    expect(config.RATE_LIMIT_WINDOW).toBe(1_500);
    expect(config.API_KEYS).toEqual(['a-key', 'b-key']);
    expect(config.ALLOW_PRIVATE_TARGETS).toBe(true);
    expect(config.BODY_LIMIT).toBe(65_536);
    expect(config.HTTP_KEEP_ALIVE_TIMEOUT).toBe(72_000);
    expect(config.HOST).toBe('127.0.0.1');
    expect(Object.isFrozen(config)).toBe(true);
    expect(loadConfig({}).SHUTDOWN_TIMEOUT).toBe(30_000);
  });

  it('takes blank values for unset, and refuses a retention Redis could not store', () => {
    const config = loadConfig({ PORT: ' ', RATE_LIMIT_MAX: '  ', SCAN_TIMEOUT: ' ' });
    expect(config.PORT).toBe(8080);
    expect(config.RATE_LIMIT_MAX).toBe(loadConfig({}).RATE_LIMIT_MAX);
    expect(config.RATE_LIMIT_MAX).toBeGreaterThan(0);
    expect(config.SCAN_TIMEOUT).toBe(60_000);
    // Whatever the field's kind: a number (a threshold of 0 would fire at once), a boolean, an enum, a host.
    const blanks = loadConfig({ ALERT_RSS_THRESHOLD: ' ', ALLOW_PRIVATE_TARGETS: ' ', LOG_LEVEL: '  ', HOST: ' ', REDIS_URL: ' ' });
    expect(blanks).toMatchObject({ ALERT_RSS_THRESHOLD: loadConfig({}).ALERT_RSS_THRESHOLD, ALLOW_PRIVATE_TARGETS: false, LOG_LEVEL: 'info', HOST: '127.0.0.1', REDIS_URL: 'redis://127.0.0.1:6379' });
    expect(blanks.ALERT_RSS_THRESHOLD).toBeGreaterThan(0);
    const problems = problemsOf(() => loadConfig({ RESULT_TTL: '0', RATE_LIMIT_WINDOW: '0ms' }));
    expect(problems.find((p) => p.startsWith('RESULT_TTL='))).toMatch(/at least 1s/);
    expect(problems.find((p) => p.startsWith('RATE_LIMIT_WINDOW='))).toMatch(/at least 1s/);
  });

  it('masks secrets, the Redis password included', () => {
    const masked = maskedConfig(
      loadConfig({ ADMIN_TOKEN: 'admin-token-123456789', API_KEYS: 'k1-secret,k2-secret', METRICS_TOKEN: 'metrics-secret', REDIS_URL: 'redis://user:pa55word@redis.internal:6380/2' }),
    );
    expect(masked).toMatchObject({ ADMIN_TOKEN: '***', API_KEYS: ['***', '***'], METRICS_TOKEN: '***', REDIS_URL: 'redis://***@redis.internal:6380/2' });
    const text = JSON.stringify(masked);
    for (const secret of ['admin-token-123456789', 'k1-secret', 'k2-secret', 'metrics-secret', 'pa55word']) expect(text).not.toContain(secret);
    // A password holding '@' (ioredis reads up to the last one), one in the query, and credentials in any other URL setting.
    expect(maskedConfig(loadConfig({ REDIS_URL: 'redis://:p@ssw0rd@redis.internal:6379/0' })).REDIS_URL).toBe('redis://***@redis.internal:6379/0');
    expect(maskedConfig(loadConfig({ REDIS_URL: 'redis://redis.internal:6379/0?password=s3cret' })).REDIS_URL).toBe('redis://redis.internal:6379/0?password=***');
    expect(JSON.stringify(maskedConfig(loadConfig({ WCAGAI_URL: 'https://ops:hunter2@wcagai.internal/' })))).not.toContain('hunter2');
    // The names log lines mask are masked here too (one set of rules), the rest of the URL kept as written.
    const signed = maskedConfig(loadConfig({ PAGERDUTY_EVENTS_URL: 'https://events.example/enqueue?sig=abc123&channel=ops', AI_BASE_URL: 'https://ai.example/v1#access_token=tok-9' }));
    expect(signed).toMatchObject({ PAGERDUTY_EVENTS_URL: 'https://events.example/enqueue?sig=***&channel=ops', AI_BASE_URL: 'https://ai.example/v1#access_token=***' });
  });

  it('refuses a deadline or interval longer than a timer can wait, and takes 24d', () => {
    // Past 2^31 - 1 ms a Node timer fires at once: a SHUTDOWN_TIMEOUT of 25d gave up the shutdown as it began.
    const bad = { SHUTDOWN_TIMEOUT: '25d', SCAN_TIMEOUT: '30d', AI_TIMEOUT: '25d', ALERTS_INTERVAL: '1000d', WORKER_LOCK_DURATION: '25d' };
    const problems = problemsOf(() => loadConfig(bad));
    expect(problems).toHaveLength(Object.keys(bad).length);
    for (const name of Object.keys(bad)) expect(problems.find((p) => p.startsWith(`${name}=`)), problems.join('\n')).toMatch(/at most 24d/);
    const config = loadConfig({ SHUTDOWN_TIMEOUT: '24d', SCAN_TIMEOUT: '24d', WORKER_LOCK_DURATION: '24d' });
    expect(config.SHUTDOWN_TIMEOUT).toBe(24 * 86_400_000);
    expect(config.WORKER_LOCK_DURATION).toBe(24 * 86_400_000);
    // Durations no timer waits for (kept in Redis as expiries) stay as long as they were.
    expect(loadConfig({ RESULT_TTL: '90d', DLQ_RETENTION: '365d' }).DLQ_RETENTION).toBe(365 * 86_400_000);
  });

  it('names a bad URL setting without the credentials it holds', () => {
    const bad = {
      AI_BASE_URL: 'https://user:ai-pw-1@ai example/v1',
      WCAGAI_URL: 'https//ops:ops-pw-2@wcagai.internal/',
      PAGERDUTY_EVENTS_URL: 'https://events.example:99999/enqueue?token=pd-tok-3',
    };
    const problems = problemsOf(() => loadConfig(bad));
    expect(problems).toHaveLength(3);
    for (const name of Object.keys(bad)) expect(problems.find((p) => p.startsWith(`${name}=`)), problems.join('\n')).toMatch(/URL/);
    for (const secret of ['ai-pw-1', 'ops-pw-2', 'pd-tok-3']) expect(problems.join('\n')).not.toContain(secret);
    // What is left still shows which value was refused.
    expect(problems.find((p) => p.startsWith('AI_BASE_URL='))).toContain('ai example');
  });

  it('refuses user:password@ in an external service URL (never sent) an alert interval or a service timeout under 100ms, never showing the password', () => {
    const bad = {
      AI_BASE_URL: 'https://proxy:ai-pw-5@ai.example/v1',
      APOLLO_BASE_URL: 'https://u:apollo-pw-6@apollo.example',
      HUBSPOT_BASE_URL: 'https://u:hs-pw-7@hubspot.example',
      PAGERDUTY_EVENTS_URL: 'https://u:pd-pw-8@events.example/v2/enqueue',
      SLACK_WEBHOOK_URL: 'https://u:slack-pw-9@hooks.example/services/T/B/X',
      ALERTS_INTERVAL: '0',
      SLACK_TIMEOUT: '0',
      AI_TIMEOUT: '50ms',
    };
    const problems = problemsOf(() => loadConfig(bad));
    expect(problems).toHaveLength(Object.keys(bad).length);
    for (const name of Object.keys(bad).filter((k) => k.endsWith('URL'))) expect(problems.find((p) => p.startsWith(`${name}=`)), problems.join('\n')).toMatch(/without user:password@/);
    // A zero deadline would fail every call at once (and open the breaker); a zero interval would never pause.
    for (const name of ['ALERTS_INTERVAL', 'SLACK_TIMEOUT', 'AI_TIMEOUT']) expect(problems.find((p) => p.startsWith(`${name}=`))).toMatch(/at least 100ms/);
    for (const secret of ['ai-pw-5', 'apollo-pw-6', 'hs-pw-7', 'pd-pw-8', 'slack-pw-9']) expect(problems.join('\n')).not.toContain(secret);
    expect(loadConfig({ ALERTS_INTERVAL: '100ms', AI_BASE_URL: 'https://ai.example/v1' }).ALERTS_INTERVAL).toBe(100);
  });

  it('reads a boolean the same way everywhere, and refuses an allowed host that is not a host', () => {
    for (const [raw, value] of [['TRUE', true], ['Yes', true], ['no', false], ['0', false]] as const) {
      expect(loadConfig({ ALLOW_PRIVATE_TARGETS: raw }).ALLOW_PRIVATE_TARGETS, raw).toBe(value);
      expect(policyFromEnv({ ALLOW_PRIVATE_TARGETS: raw }, { allowPrivate: !value }).allowPrivate, raw).toBe(value);
    }
    expect(loadConfig({ SCAN_ALLOWED_HOSTS: 'staging.example.com, *.example.org,10.0.0.5:8080,[::1]:8443' }).SCAN_ALLOWED_HOSTS).toHaveLength(4);
    const problems = problemsOf(() => loadConfig({ SCAN_ALLOWED_HOSTS: 'https://staging.example.com' }));
    expect(problems).toEqual([expect.stringMatching(/^SCAN_ALLOWED_HOSTS=.*expected a comma list of hosts/)]);
  });

  it('reads TRUST_PROXY as false, true or proxy addresses and ranges, and refuses a hop count or a non-address', () => {
    expect(loadConfig({}).TRUST_PROXY).toBe(false);
    expect(loadConfig({ TRUST_PROXY: 'TRUE' }).TRUST_PROXY).toBe(true);
    expect(loadConfig({ TRUST_PROXY: ' 10.0.0.0/8, 192.168.1.10,fd00::/8, loopback ' }).TRUST_PROXY).toEqual(['10.0.0.0/8', '192.168.1.10', 'fd00::/8', 'loopback']);
    for (const bad of ['2', 'lb.internal', '10.0.0.0/33', '10.0.0.1/8/1']) {
      expect(problemsOf(() => loadConfig({ TRUST_PROXY: bad })), bad).toEqual([expect.stringMatching(/^TRUST_PROXY=.*expected false, true, or proxy addresses/)]);
    }
  });

  it('lists the settings checked against each other together with every other bad value', () => {
    const problems = problemsOf(() => loadConfig({ PORT: 'eighty', REDIS_SENTINELS: 'a:26379', REDIS_CLUSTER_NODES: 'b:7000', REDIS_TLS_CA: '/nonexistent/ca.pem' }));
    expect(problems.map((p) => p.split('=')[0])).toEqual(['PORT', 'REDIS_CLUSTER_NODES', 'REDIS_TLS_CA']);
    expect(problems[1]).toMatch(/not both/);
    expect(problems[2]).toMatch(/rediss:\/\//);
    // A REDIS_URL that is itself bad is named once, not again by the settings that read it.
    const badUrl = problemsOf(() => loadConfig({ REDIS_URL: 'http://x:6379/3', REDIS_CLUSTER_NODES: 'b:7000', REDIS_TLS_CA: '/nonexistent/ca.pem' }));
    expect(badUrl).toHaveLength(1);
    expect(badUrl[0]).toMatch(/^REDIS_URL=\(secret\): expected a redis:\/\//);
  });

  it('refuses a scan, navigation or axe deadline under a second (0 would time out every scan, not lift the limit)', () => {
    const problems = problemsOf(() => loadConfig({ SCAN_TIMEOUT: '0', NAVIGATION_TIMEOUT: '0s', AXE_TIMEOUT: '500ms' }));
    expect(problems).toEqual(['SCAN_TIMEOUT="0": expected at least 1s', 'NAVIGATION_TIMEOUT="0s": expected at least 1s', 'AXE_TIMEOUT="500ms": expected at least 1s']);
    expect(loadConfig({ SCAN_TIMEOUT: '1s', NAVIGATION_TIMEOUT: '1s', AXE_TIMEOUT: '1s' }).SCAN_TIMEOUT).toBe(1_000);
  });

  it('drops the blanks around a bearer token (a secret file\'s newline) and refuses blanks inside it', () => {
    const config = loadConfig({ ADMIN_TOKEN: 'an-admin-token-of-20\n', METRICS_TOKEN: ' scrape-token\n' });
    expect(config.ADMIN_TOKEN).toBe('an-admin-token-of-20');
    expect(config.METRICS_TOKEN).toBe('scrape-token');
    const problems = problemsOf(() => loadConfig({ ADMIN_TOKEN: 'an admin token of 20', METRICS_TOKEN: 'scrape token', API_KEYS: 'k1' }));
    expect(problems).toEqual([
      'ADMIN_TOKEN=(secret): expected no blanks inside (a bearer token is one word)',
      'METRICS_TOKEN=(secret): expected no blanks inside (a bearer token is one word)',
    ]);
    // Blanks do not count towards the 16 characters.
    expect(problemsOf(() => loadConfig({ ADMIN_TOKEN: '   short-token   ' }))).toEqual(['ADMIN_TOKEN=(secret): expected at least 16 characters']);
  });

  it('reads Sentinel and Cluster settings, refuses both at once and a Cluster database other than 0', () => {
    const sentinel = loadConfig({ REDIS_SENTINELS: ' 10.0.0.1:26379, sentinel-b:26380,[::1]:26381 ', REDIS_SENTINEL_PASSWORD: 'sentinel-secret' });
    expect(sentinel.REDIS_SENTINELS).toEqual(['10.0.0.1:26379', 'sentinel-b:26380', '[::1]:26381']);
    expect(sentinel.REDIS_SENTINEL_NAME).toBe('mymaster');
    expect(sentinel.REDIS_CLUSTER_NODES).toEqual([]);
    expect(JSON.stringify(maskedConfig(sentinel))).not.toContain('sentinel-secret');
    expect(loadConfig({ REDIS_CLUSTER_NODES: 'a:7000,b:7001' }).REDIS_CLUSTER_NODES).toEqual(['a:7000', 'b:7001']);

    const both = problemsOf(() => loadConfig({ REDIS_SENTINELS: 'a:26379', REDIS_CLUSTER_NODES: 'b:7000' }));
    expect(both).toHaveLength(1);
    expect(both[0]).toMatch(/^REDIS_CLUSTER_NODES=.*REDIS_SENTINELS or REDIS_CLUSTER_NODES, not both/);
    expect(problemsOf(() => loadConfig({ REDIS_CLUSTER_NODES: 'b:7000', REDIS_URL: 'redis://:pw@x:6379/3' }))[0]).toMatch(/^REDIS_URL=\(secret\): .*database 0/);
    expect(problemsOf(() => loadConfig({ REDIS_SENTINELS: 'no-port' }))[0]).toMatch(/^REDIS_SENTINELS=.*host:port/);
    expect(problemsOf(() => loadConfig({ REDIS_CLUSTER_NODES: 'redis://a:7000' }))[0]).toMatch(/^REDIS_CLUSTER_NODES=.*host:port/);
  });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

function run(args: string[], env: Record<string, string | undefined>, cwd: string): Promise<Run> {
  const started = Date.now();
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env, cwd, timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: unknown }).code as number | null) : 0;
      resolve({ code: typeof code === 'number' ? code : null, stdout, stderr, ms: Date.now() - started });
    });
  });
}

describe('the CLI and the configuration', () => {
  let cwd: string;
  let trap: Server;
  let trapPort: number;
  let connections = 0;

  beforeAll(async () => {
    // No .env of the repository: each run starts in an empty directory.
    cwd = mkdtempSync(join(tmpdir(), 'wcagai-config-'));
    // A TCP listener standing in for Redis: a process that validated its configuration first never connects.
    trap = createServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => trap.listen(0, '127.0.0.1', () => resolve()));
    trapPort = (trap.address() as { port: number }).port;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => trap?.close(() => resolve()));
    if (cwd) rmSync(cwd, { recursive: true, force: true });
  });

  function listening(port: number): Promise<boolean> {
    return new Promise((resolve) => {
      const socket = createConnection({ host: '127.0.0.1', port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
  }

  it('`serve` and `worker` with bad settings exit 1 listing every bad variable, before anything starts', async () => {
    const bad = { SHUTDOWN_TIMEOUT: 'soon', LOG_LEVEL: 'loud', ADMIN_TOKEN: 'short', WORKER_CONCURRENCY: '0', RATE_LIMIT_MAX: '-3' };
    for (const command of ['serve', 'worker']) {
      const port = await freePort();
      const env = { ...baseEnv(), REDIS_URL: `redis://127.0.0.1:${trapPort}`, PORT: String(port), ...bad };
      const res = await run([command], env, cwd);
      expect(res.code, `${command}: ${res.stderr}`).toBe(1);
      for (const name of Object.keys(bad)) expect(res.stderr, command).toMatch(new RegExp(`^\\s+${name}=`, 'm'));
      expect(res.stderr).not.toContain('short');
      expect(res.stderr).not.toMatch(/\bat .+:\d+:\d+/);
      expect(res.stdout).toBe('');
      expect(await listening(port)).toBe(false);
    }
    expect(connections).toBe(0);
  });

  it('`serve` and `worker` that cannot listen stop what they started and exit 1 in one line', async () => {
    // The port is taken; Redis (a server of this test's own) is there.
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', () => resolve()));
    const port = (holder.address() as { port: number }).port;
    const redis = await startRedisServer();
    try {
      const env = { ...baseEnv(), REDIS_URL: redis.url, LOG_LEVEL: 'warn' };
      const serve = await run(['serve', '--no-worker', '--port', String(port)], env, cwd);
      expect(serve.code, serve.stderr).toBe(1);
      expect(serve.stderr.trim()).toBe(`wcagai: cannot listen on 127.0.0.1:${port}: the address is already in use`);
      const worker = await run(['worker', '--concurrency', '1', '--health-port', String(port)], env, cwd);
      expect(worker.code, worker.stderr).toBe(1);
      expect(worker.stderr.trim()).toBe(`wcagai: cannot listen on 127.0.0.1:${port}: the address is already in use`);
    } finally {
      await new Promise<void>((resolve) => holder.close(() => resolve()));
      await redis.close();
    }
  });

  it('a LOG_FILE that cannot be written is an error in one line; a command named without its subcommand exits 1', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wcagai-logfile-'));
    try {
      const env = { ...baseEnv(), REDIS_URL: `redis://127.0.0.1:${trapPort}`, LOG_FILE: dir };
      const res = await run(['serve', '--no-worker', '--port', String(await freePort())], env, cwd);
      expect(res.code).toBe(1);
      expect(res.stderr.trim()).toBe(`wcagai: LOG_FILE=${dir}: cannot open it for writing (EISDIR)`);
      expect(connections).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    // A directory where nothing can be made (Node's own recursive mkdir never returns under /proc).
    const proc = await run(['serve', '--no-worker', '--port', String(await freePort())], { ...baseEnv(), REDIS_URL: `redis://127.0.0.1:${trapPort}`, LOG_FILE: '/proc/wcagai-no-such/dir/wcagai.log' }, cwd);
    expect(proc.code).toBe(1);
    expect(proc.stderr.trim()).toBe('wcagai: LOG_FILE=/proc/wcagai-no-such/dir/wcagai.log: cannot open it for writing (ENOENT)');
    for (const args of [['dlq'], ['config'], []]) {
      const res = await run(args, baseEnv(), cwd);
      expect(res.code, `wcagai ${args.join(' ')}`).toBe(1);
      expect(res.stderr).toMatch(/^Usage: wcagai/m);
    }
    const help = await run(['--help'], baseEnv(), cwd);
    expect(help.code).toBe(0);
  });

  it('`config check` prints the effective configuration with secrets masked', async () => {
    const env = {
      ...baseEnv(),
      ADMIN_TOKEN: 'adm-secret-0123456789',
      API_KEYS: 'key-secret-one,key-secret-two',
      METRICS_TOKEN: 'metrics-secret-x',
      REDIS_URL: 'redis://default:redis-pa55@127.0.0.1:6390/1',
      PORT: '9191',
      SHUTDOWN_TIMEOUT: '15s',
    };
    const secrets = ['adm-secret-0123456789', 'key-secret-one', 'key-secret-two', 'metrics-secret-x', 'redis-pa55'];
    const text = await run(['config', 'check'], env, cwd);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^PORT\s+9191$/m);
    expect(text.stdout).toMatch(/^SHUTDOWN_TIMEOUT\s+15000$/m);
    expect(text.stdout).toMatch(/^ADMIN_TOKEN\s+\*\*\*$/m);
    expect(text.stdout).toMatch(/^REDIS_URL\s+redis:\/\/\*\*\*@127\.0\.0\.1:6390\/1$/m);
    expect(text.stdout).toMatch(/^RATE_LIMIT_MAX\s+600$/m);
    expect(text.stdout).toMatch(/configuration is valid/);
    for (const secret of secrets) expect(text.stdout + text.stderr).not.toContain(secret);

    // A setting left unset is listed as such, not left out.
    expect(text.stdout).toMatch(/^SLACK_WEBHOOK_URL\s+\(unset\)$/m);
    expect(text.stdout).toMatch(/^WORKER_LOCK_DURATION\s+\(unset\)$/m);
    const json = await run(['config', 'check', '--json'], env, cwd);
    expect(json.code, json.stderr).toBe(0);
    const parsed = JSON.parse(json.stdout) as Record<string, unknown>;
    expect(parsed).toMatchObject({ PORT: 9191, SHUTDOWN_TIMEOUT: 15_000, ADMIN_TOKEN: '***', API_KEYS: ['***', '***'], METRICS_TOKEN: '***', REDIS_URL: 'redis://***@127.0.0.1:6390/1' });
    expect(parsed).toMatchObject({ SLACK_WEBHOOK_URL: null, WORKER_LOCK_DURATION: null });
    for (const secret of secrets) expect(json.stdout).not.toContain(secret);
  });

  it('a .env that exists but cannot be read is an error in one line, not skipped', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wcagai-dotenv-'));
    try {
      mkdirSync(join(dir, '.env'));
      const run1 = await run(['config', 'check'], baseEnv(), dir);
      expect(run1.code).toBe(1);
      expect(run1.stderr.trim()).toBe(`wcagai: cannot read .env in ${realpathSync(dir)}: not a file`);
      expect(run1.stdout).toBe('');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('`config check` reads .env, and fails with exit 1 on bad values', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wcagai-dotenv-'));
    try {
      writeFileSync(join(dir, '.env'), 'PORT=7171\nRATE_LIMIT_MAX=42\n');
      const ok = await run(['config', 'check', '--json'], baseEnv(), dir);
      expect(ok.code, ok.stderr).toBe(0);
      expect(JSON.parse(ok.stdout)).toMatchObject({ PORT: 7171, RATE_LIMIT_MAX: 42 });

      const bad = await run(['config', 'check'], { ...baseEnv(), PORT: '70000', REDIS_URL: 'localhost:6379' }, dir);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toMatch(/^\s+PORT="70000": .*65535/m);
      expect(bad.stderr).toMatch(/^\s+REDIS_URL=/m);
      expect(bad.stdout).not.toMatch(/configuration is valid/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('makeDirectory', () => {
  it('makes a directory and its missing parents, leaves an existing one alone, and refuses where nothing can be made', () => {
    const root = mkdtempSync(join(tmpdir(), 'wcagai-mkdir-'));
    try {
      const deep = join(root, 'a', 'b', 'c');
      makeDirectory(deep);
      expect(statSync(deep).isDirectory()).toBe(true);
      makeDirectory(deep);
      writeFileSync(join(root, 'file'), '');
      expect(() => makeDirectory(join(root, 'file', 'x'))).toThrow(/ENOTDIR/);
      expect(() => makeDirectory(join(root, 'file'))).toThrow(/ENOTDIR/);
      expect(() => makeDirectory('/proc/wcagai-no-such/dir')).toThrow(/ENOENT/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
