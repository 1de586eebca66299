/**
 * Redis over TLS (`rediss://`) with a private certificate authority: a redis-server child listening
 * on a TLS port only, its certificate signed by a CA made here with openssl. The service trusts it
 * through REDIS_TLS_CA and runs a scan end to end; without the CA the connection is refused.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import { producerConnection, redisTargetOf, waitReady } from '../../src/queue/redis.js';
import { page, startFixtureServer, type FixtureServer } from '../support/fixture-server.js';
import { freePort } from '../support/net.js';
import { startTestService, type TestService } from '../support/service.js';

const openssl = (args: string[], cwd: string) => execFileSync('openssl', args, { cwd, stdio: 'pipe' });

describe('Redis over TLS with a private CA (REDIS_TLS_CA)', { timeout: 180_000 }, () => {
  let dir: string;
  let server: ChildProcess | null = null;
  let port: number;
  let url: string;
  let ca: string;
  let fixture: FixtureServer;
  let svc: TestService | undefined;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'wcagai-redis-tls-'));
    openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=wcagai test CA'], dir);
    openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'redis.key', '-out', 'redis.csr', '-subj', '/CN=127.0.0.1'], dir);
    writeFileSync(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1\n');
    openssl(['x509', '-req', '-in', 'redis.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'redis.pem', '-days', '2', '-extfile', 'san.ext'], dir);
    ca = join(dir, 'ca.pem');
    port = await freePort();
    url = `rediss://127.0.0.1:${port}`;
    server = spawn(
      process.env.REDIS_SERVER_BIN ?? 'redis-server',
      ['--port', '0', '--tls-port', String(port), '--bind', '127.0.0.1', '--tls-cert-file', 'redis.pem', '--tls-key-file', 'redis.key', '--tls-ca-cert-file', 'ca.pem', '--tls-auth-clients', 'no', '--save', '', '--appendonly', 'no', '--dir', dir],
      { cwd: dir, stdio: 'ignore' },
    );
    // Ready once a client trusting the CA gets PONG.
    const until = Date.now() + 15_000;
    for (;;) {
      const probe = producerConnection(redisTargetOf(loadConfig({ REDIS_URL: url, REDIS_TLS_CA: ca })));
      probe.on('error', () => undefined);
      const ready = await waitReady(probe, 1_000).then(
        () => true,
        () => false,
      );
      probe.disconnect();
      if (ready) break;
      if (Date.now() > until) throw new Error('redis-server with TLS did not start');
      await new Promise((r) => setTimeout(r, 100));
    }
    fixture = await startFixtureServer();
    fixture.html('/tls.html', page('<h1>Over TLS</h1><img src="x.png">'));
  });

  afterAll(async () => {
    await svc?.close();
    await fixture?.close();
    server?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses REDIS_TLS_CA without rediss://, and a CA file that cannot be read', () => {
    const problems = (env: Record<string, string>) => {
      try {
        loadConfig(env);
      } catch (err) {
        return (err as ConfigError).problems.join('\n');
      }
      return '';
    };
    expect(problems({ REDIS_URL: 'redis://127.0.0.1:6379', REDIS_TLS_CA: ca })).toMatch(/REDIS_TLS_CA.*rediss:\/\//);
    expect(problems({ REDIS_URL: url, REDIS_TLS_CA: join(dir, 'missing.pem') })).toMatch(/REDIS_TLS_CA.*cannot read/);
  });

  it('does not connect when the server certificate is not trusted', async () => {
    const untrusted = producerConnection(redisTargetOf(loadConfig({ REDIS_URL: url })));
    const errors: string[] = [];
    untrusted.on('error', (err: Error) => errors.push(err.message));
    await expect(waitReady(untrusted, 2_000)).rejects.toThrow();
    untrusted.disconnect();
    expect(errors.join(' ')).toMatch(/self[- ]signed|certificate/i);
  });

  it('runs a scan end to end over TLS when the CA is configured', async () => {
    svc = await startTestService({ redisUrl: url, worker: 1, settings: { REDIS_TLS_CA: ca, SCAN_TIMEOUT: '60s', NAVIGATION_TIMEOUT: '30s' } });
    const res = await svc.post('/api/scans', { url: fixture.url('/tls.html') });
    expect(res.status, res.body).toBe(202);
    const view = await svc.finished(res.json.id as string, 90_000);
    expect(view.status).toBe('completed');
    expect(view.result.violations.map((v: { id: string }) => v.id)).toContain('image-alt');
  });
});
