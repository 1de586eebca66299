/** `fetch` for what the service itself downloads on a user's behalf (sitemaps), under the target policy. */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { LookupFunction } from 'node:net';
import { isIP } from 'node:net';
import { Readable } from 'node:stream';
import { WcagaiError } from '../errors/catalogue.js';
import { bareAddress, checkTarget } from './target-guard.js';
import type { TargetPolicy } from './types.js';

const MAX_REDIRECTS = 5;

/**
 * A GET that connects only to `addresses` (those the target policy checked), never resolving the
 * host again: a name answering a public address to the check and a private one to the connection
 * (DNS rebinding) cannot move it. TLS still verifies the certificate against the URL's host name.
 */
export function pinnedGet(url: string, addresses: readonly string[], init: { headers?: Record<string, string>; signal?: AbortSignal | null } = {}): Promise<Response> {
  const pinned = addresses.map((a) => bareAddress(a)).map((address) => ({ address, family: isIP(address) }));
  if (pinned.length === 0 || pinned.some((p) => p.family === 0)) return Promise.reject(new TypeError(`pinnedGet: no IP address to connect to for ${url}`));
  const lookup = ((_host: string, options: { all?: boolean }, callback: (...args: unknown[]) => void) => {
    if (options?.all) callback(null, pinned);
    else callback(null, pinned[0]!.address, pinned[0]!.family);
  }) as unknown as LookupFunction;
  const target = new URL(url);
  const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(target, { method: 'GET', headers: init.headers ?? {}, lookup, ...(init.signal ? { signal: init.signal } : {}) }, (res: IncomingMessage) => {
      const headers = new Headers();
      for (const [name, value] of Object.entries(res.headers)) {
        if (value === undefined) continue;
        for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v);
      }
      const status = res.statusCode ?? 502;
      const body = status === 204 || status === 304 ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>);
      if (!body) res.resume();
      resolve(new Response(body, { status, statusText: res.statusMessage ?? '', headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * `fetch` for sitemaps: every URL it reaches (nested sitemaps of an index, each redirect hop)
 * passes the target policy first, and the connection goes to the addresses that passed. Without
 * this a sitemap on an allowed host could point the fetch at internal addresses.
 */
export function policyFetch(policy: TargetPolicy, fetchImpl: typeof fetch = fetch): typeof fetch {
  return async (input, init) => {
    let url = input instanceof Request ? input.url : String(input);
    for (let hop = 0; ; hop++) {
      // Empty when the policy lets the host through whatever it resolves to (allowed host, private targets allowed).
      const addresses = await checkTarget(url, policy);
      const response = addresses.length ? await pinnedGet(url, addresses, { headers: (init?.headers ?? {}) as Record<string, string>, signal: init?.signal ?? null }) : await fetchImpl(url, { ...init, redirect: 'manual' });
      const location = response.status >= 300 && response.status < 400 ? response.headers.get('location') : null;
      if (!location) return response;
      await response.body?.cancel().catch(() => undefined);
      if (hop >= MAX_REDIRECTS) throw new WcagaiError('USAGE', `sitemap ${url}: more than ${MAX_REDIRECTS} redirects`);
      url = new URL(location, url).href;
    }
  };
}
