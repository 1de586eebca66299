/**
 * Navigation failures that trying again cannot fix end at once, not retryable: a certificate the
 * browser refuses and a redirect loop. A refused connection stays retryable. Real Chromium, pages
 * served on loopback (one of them over TLS with a self-signed certificate).
 */
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_SCAN_OPTIONS } from '../../src/domain/scan.js';
import { createScanner } from '../../src/scanner/engine.js';
import type { Scanner } from '../../src/scanner/types.js';
import { freePort } from '../support/net.js';
import { ENGINE_TEST_CONFIG, NO_ALT_IMG, ok, ruleIds } from '../support/engine.js';
import { page, startFixtureServer, type FixtureServer } from '../support/fixture-server.js';

// A self-signed certificate for 127.0.0.1 (valid until 2126), made for this test only: no browser trusts it.
const CERT = `-----BEGIN CERTIFICATE-----
MIIBkDCCATagAwIBAgIUXZs5ivJsASJ94evoMqFSx50Itx8wCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJMTI3LjAuMC4xMCAXDTI2MTEzMDEwMzAxMloYDzIxMjYxMTA2
MTAzMDEyWjAUMRIwEAYDVQQDDAkxMjcuMC4wLjEwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAATYaS3p7ZwXQFiGSETM086Mh2IVMyWjRIiewF6fWOKC9dgZb5To4tMM
c6U/UldIlfyiiu4jg5v5eDdKo/8NIVuko2QwYjAdBgNVHQ4EFgQU/so55HO4YZ96
jtQ+cj+sWB9eamgwHwYDVR0jBBgwFoAU/so55HO4YZ96jtQ+cj+sWB9eamgwDwYD
VR0TAQH/BAUwAwEB/zAPBgNVHREECDAGhwR/AAABMAoGCCqGSM49BAMCA0gAMEUC
IQCMopG7705d840DcWDqAbvi0nB3BOy9UAgEQdiRHK3FEgIgHALwzFrew8mZiJNf
9lCx1tX0psIcNQCEFzo3iCHqRK4=
-----END CERTIFICATE-----
`;
const KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgx+496DFKD9gyRXtK
UtfeBTw0yRAIORovC/llf9pUnzChRANCAATYaS3p7ZwXQFiGSETM086Mh2IVMyWj
RIiewF6fWOKC9dgZb5To4tMMc6U/UldIlfyiiu4jg5v5eDdKo/8NIVuk
-----END PRIVATE KEY-----
`;

describe('ScanEngine on navigations that cannot succeed by trying again', () => {
  let server: FixtureServer;
  let tls: HttpsServer;
  let tlsOrigin: string;
  let engine: Scanner;

  beforeAll(async () => {
    server = await startFixtureServer();
    server.html('/fine', page(`<h1>Fine</h1>${NO_ALT_IMG}`));
    server.redirect('/loop-a', '/loop-b');
    server.redirect('/loop-b', '/loop-a');
    tls = createHttpsServer({ cert: CERT, key: KEY }, (_req, res) => void res.writeHead(200, { 'content-type': 'text/html' }).end(page('<h1>Secret</h1>')));
    await new Promise<void>((resolve) => tls.listen(0, '127.0.0.1', resolve));
    tlsOrigin = `https://127.0.0.1:${(tls.address() as AddressInfo).port}`;
    engine = await createScanner(ENGINE_TEST_CONFIG);
  });

  afterAll(async () => {
    await engine?.close();
    await server?.close();
    await new Promise((resolve) => tls?.close(resolve));
  });

  it('ends a page whose certificate the browser refuses as TLS_CERT_INVALID, not retryable', async () => {
    const result = await engine.scan(`${tlsOrigin}/`, DEFAULT_SCAN_OPTIONS);
    expect(result).toMatchObject({ status: 'error', error: { code: 'TLS_CERT_INVALID', retryable: false } });
    expect(result.error?.message).toMatch(/ERR_CERT_/);
  });

  it('ends a redirect loop as REDIRECT_LOOP, not retryable', async () => {
    const result = await engine.scan(server.url('/loop-a'), DEFAULT_SCAN_OPTIONS);
    expect(result).toMatchObject({ status: 'error', error: { code: 'REDIRECT_LOOP', retryable: false } });
    // Chromium follows 20 redirects before it gives up: both ends of the loop were asked, more than once.
    expect(server.requestsTo('/loop-a').length).toBeGreaterThan(1);
  });

  it('keeps a refused connection retryable, and scans the next page as usual after all three', async () => {
    const closed = await freePort();
    const refused = await engine.scan(`http://127.0.0.1:${closed}/`, DEFAULT_SCAN_OPTIONS);
    expect(refused).toMatchObject({ status: 'error', error: { code: 'CONNECTION_FAILED', retryable: true } });
    expect(ruleIds(ok(await engine.scan(server.url('/fine'), DEFAULT_SCAN_OPTIONS)))).toEqual(['image-alt']);
  });
});
