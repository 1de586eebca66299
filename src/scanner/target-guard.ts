/**
 * SSRF protection: decides whether a scan may reach a URL.
 *
 * A scanner drives a real browser on behalf of whoever submits the URL, so without this guard
 * anyone could make it read cloud metadata (169.254.169.254, fd00:ec2::254), admin consoles on
 * loopback, or services on the private network.
 */
import { isIP } from 'node:net';
import { lookup } from 'node:dns/promises';
import { WcagaiError } from '../errors/catalogue.js';
import { parseBoolSetting } from '../config/values.js';
import { CENSOR, urlForLog } from '../observability/redact.js';
import type { Resolver, TargetPolicy } from './types.js';

const ALLOWED_SCHEMES = new Set(['http:', 'https:']);

/**
 * Parses and validates a scan target: http(s) only, no credentials, WHATWG-normalized host. A
 * refusal quotes the URL as a log line would show it (`urlForLog`: user, password and token-like
 * query values masked), since its message reaches the answer and the log.
 */
export function parseTargetUrl(input: string): URL {
  const text = input.trim();
  const quoted = JSON.stringify(urlForLog(text));
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new WcagaiError('INVALID_URL', `not a URL: ${quoted}`, { details: { url: urlForLog(text) } });
  }
  if (!ALLOWED_SCHEMES.has(url.protocol)) {
    throw new WcagaiError(
      'UNSUPPORTED_SCHEME',
      `unsupported URL scheme "${url.protocol}" in ${quoted}: only http and https are scanned`,
      { details: { url: urlForLog(text), scheme: url.protocol } },
    );
  }
  // `http://example.com@127.0.0.1/` reads like example.com to a human but targets 127.0.0.1;
  // the raw check also catches an empty userinfo (`http://@host/`) that WHATWG silently drops.
  if (url.username !== '' || url.password !== '' || rawAuthority(text).includes('@')) {
    // Quoted as parsed, the credentials replaced: the raw text may hide them where a mask would
    // not look, and the parsed form names the host the URL really targets.
    const shown = new URL(url.href);
    shown.username = '';
    shown.password = '';
    const masked = shown.href.replace('//', `//${CENSOR}@`);
    throw new WcagaiError('INVALID_URL', `credentials in URLs are not accepted: ${JSON.stringify(urlForLog(masked))}`, { details: { url: urlForLog(masked) } });
  }
  return url;
}

function rawAuthority(text: string): string {
  const start = text.indexOf('//');
  if (start < 0) return '';
  const rest = text.slice(start + 2);
  // Backslash ends the authority too: WHATWG treats it as "/" in special (http/https) URLs.
  const end = rest.search(/[/?#\\]/);
  return end < 0 ? rest : rest.slice(0, end);
}

// ---------------------------------------------------------------------------------------------
// Address classification

type Cidr4 = readonly [base: string, bits: number];

/** IPv4 ranges that must never be reached from a public scanner (RFC 6890 special purpose). */
const PRIVATE_V4: readonly Cidr4[] = [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.88.99.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
  ['255.255.255.255', 32],
];

const PRIVATE_V4_RANGES = PRIVATE_V4.map(([base, bits]) => {
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return { net: (ipv4ToInt(base) ?? 0) & mask, mask };
});

function ipv4ToInt(ip: string): number | undefined {
  const parts = ip.split('.');
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part)) return undefined;
    const n = Number(part);
    if (n > 255) return undefined;
    value = value * 256 + n;
  }
  return value;
}

function isPrivateV4Int(value: number): boolean {
  return PRIVATE_V4_RANGES.some(({ net, mask }) => ((value & mask) >>> 0) === net >>> 0);
}

/** Expands an IPv6 literal (any notation, including a dotted IPv4 tail) to eight 16-bit groups. */
function ipv6ToGroups(ip: string): number[] | undefined {
  let text = ip;
  const tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.slice(lastColon + 1).includes('.')) {
    const v4 = ipv4ToInt(text.slice(lastColon + 1));
    if (v4 === undefined) return undefined;
    tail.push(v4 >>> 16, v4 & 0xffff);
    const head = text.slice(0, lastColon + 1);
    text = head.endsWith('::') ? head : text.slice(0, lastColon);
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const parse = (s: string): number[] | undefined => {
    if (s === '') return [];
    const out: number[] = [];
    for (const g of s.split(':')) {
      if (!/^[0-9a-f]{1,4}$/i.test(g)) return undefined;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const head = parse(halves[0] ?? '');
  const rest = halves.length === 2 ? parse(halves[1] ?? '') : [];
  if (!head || !rest) return undefined;
  const explicit = head.length + rest.length + tail.length;
  if (halves.length === 1) return explicit === 8 ? [...head, ...tail] : undefined;
  if (explicit > 7) return undefined;
  return [...head, ...new Array<number>(8 - explicit).fill(0), ...rest, ...tail];
}

function isPrivateV6(groups: readonly number[]): boolean {
  const g = (i: number): number => groups[i] ?? 0;
  const embeddedV4 = (hi: number, lo: number): boolean => isPrivateV4Int(((g(hi) << 16) >>> 0) + g(lo));
  const zeroUpTo = (n: number): boolean => groups.slice(0, n).every((x) => x === 0);

  // ::, ::1 and IPv4-compatible ::a.b.c.d all land in 0.0.0.0/8 or the embedded address.
  if (zeroUpTo(6)) return embeddedV4(6, 7);
  // IPv4-mapped ::ffff:a.b.c.d: the kernel connects to the IPv4 address itself.
  if (zeroUpTo(5) && g(5) === 0xffff) return embeddedV4(6, 7);
  // IPv4-translated ::ffff:0:a.b.c.d (SIIT).
  if (zeroUpTo(4) && g(4) === 0xffff && g(5) === 0) return embeddedV4(6, 7);
  // NAT64 well-known prefix 64:ff9b::/96: a gateway forwards to the embedded IPv4 address.
  if (g(0) === 0x64 && g(1) === 0xff9b && g(2) === 0 && g(3) === 0 && g(4) === 0 && g(5) === 0) {
    return embeddedV4(6, 7);
  }
  // Local-use NAT64 64:ff9b:1::/48 only ever points inside a private network.
  if (g(0) === 0x64 && g(1) === 0xff9b && g(2) === 1) return true;
  // 6to4 2002:aabb:ccdd::/48 tunnels to the embedded IPv4 address.
  if (g(0) === 0x2002) return embeddedV4(1, 2);
  // Teredo 2001::/32 hides an obfuscated IPv4 client; nothing legitimate is scanned through it.
  if (g(0) === 0x2001 && g(1) === 0) return true;
  if (g(0) === 0x2001 && g(1) === 0x0db8) return true; // documentation
  if (g(0) === 0x0100 && g(1) === 0 && g(2) === 0 && g(3) === 0) return true; // discard-only 100::/64
  if ((g(0) & 0xffc0) === 0xfe80) return true; // link-local
  if ((g(0) & 0xffc0) === 0xfec0) return true; // deprecated site-local
  if ((g(0) & 0xfe00) === 0xfc00) return true; // unique local, incl. AWS metadata fd00:ec2::254
  if ((g(0) & 0xff00) === 0xff00) return true; // multicast
  return false;
}

/** Strips IPv6 brackets and a zone id (`[fe80::1%eth0]` → `fe80::1`). */
export function bareAddress(ip: string): string {
  let text = ip.trim();
  if (text.startsWith('[') && text.endsWith(']')) text = text.slice(1, -1);
  const zone = text.indexOf('%');
  return zone < 0 ? text : text.slice(0, zone);
}

/** True when an IP literal is loopback, private, link-local, metadata, reserved or otherwise non-public. */
export function isPrivateAddress(ip: string): boolean {
  const text = bareAddress(ip);
  const family = isIP(text);
  if (family === 4) {
    const value = ipv4ToInt(text);
    return value === undefined ? false : isPrivateV4Int(value);
  }
  if (family === 6) {
    const groups = ipv6ToGroups(text);
    // isIP accepted it, so a parse failure is our gap, not the input's: fail closed.
    return groups === undefined ? true : isPrivateV6(groups);
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Resolution

/** Resolves with the system resolver (what Chromium will also see), all families, OS order. */
export const defaultResolver: Resolver = async (hostname) => {
  try {
    const answers = await lookup(hostname, { all: true, verbatim: true });
    return answers.map((a) => a.address);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'ERROR';
    throw new WcagaiError('DNS_FAILURE', `cannot resolve ${hostname}: ${code}`, {
      cause: err,
      details: { host: hostname, code },
    });
  }
};

/**
 * Memoizes answers for `ttlMs` so one page's many subresource requests to the same host cost one
 * lookup.
 *
 * Trade-off: within the TTL a DNS-rebinding answer (public first, private next) is not seen, so a
 * cached "public" verdict can outlive the record. That window is no wider than the one that exists
 * anyway (Chromium resolves again on its own after our check), it is bounded by the short TTL, and
 * the engine re-checks every request, so once the entry expires the private answer is refused.
 * Failures are never cached, and concurrent lookups of one host share a single promise.
 */
export function createCachingResolver(inner: Resolver, ttlMs = 5_000, clock: () => number = Date.now): Resolver {
  const maxEntries = 1_000;
  const cache = new Map<string, { expires: number; answer: Promise<string[]> }>();
  return (hostname) => {
    const key = hostname.toLowerCase();
    const now = clock();
    const hit = cache.get(key);
    if (hit && hit.expires > now) return hit.answer;
    cache.delete(key);
    const answer = inner(hostname);
    cache.set(key, { expires: now + ttlMs, answer });
    answer.catch(() => {
      if (cache.get(key)?.answer === answer) cache.delete(key);
    });
    if (cache.size > maxEntries) {
      const oldest = cache.keys().next().value;
      if (oldest !== undefined) cache.delete(oldest);
    }
    return answer;
  };
}

// ---------------------------------------------------------------------------------------------
// Policy

interface HostEntry {
  host: string;
  port?: string;
  wildcard: boolean;
}

function normalizeHost(host: string): string {
  const bare = bareAddress(host).toLowerCase().replace(/\.+$/, '');
  if (isIP(bare) === 6) {
    try {
      return new URL(`http://[${bare}]/`).hostname.slice(1, -1);
    } catch {
      return bare;
    }
  }
  try {
    // Same normalization the target went through: IDNA, numeric IPv4 forms.
    return new URL(`http://${bare}/`).hostname.replace(/\.+$/, '');
  } catch {
    return bare;
  }
}

function parseHostEntry(raw: string): HostEntry | undefined {
  let text = raw.trim().toLowerCase();
  if (text === '') return undefined;
  const wildcard = text.startsWith('*.');
  if (wildcard) text = text.slice(2);
  let host = text;
  let port: string | undefined;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) return undefined;
    host = text.slice(1, close);
    const after = text.slice(close + 1);
    if (after.startsWith(':')) port = after.slice(1);
  } else if (text.split(':').length === 2) {
    [host = '', port] = text.split(':');
  }
  if (port !== undefined && !/^\d{1,5}$/.test(port)) return undefined;
  return { host: normalizeHost(host), ...(port !== undefined ? { port: String(Number(port)) } : {}), wildcard };
}

function effectivePort(url: URL): string {
  if (url.port !== '') return url.port;
  return url.protocol === 'https:' ? '443' : '80';
}

/** True when the URL's host (or host:port) is listed; `*.example.com` matches subdomains only. */
export function hostAllowed(url: URL, allowedHosts: readonly string[]): boolean {
  const host = normalizeHost(url.hostname);
  const port = effectivePort(url);
  return allowedHosts.some((raw) => {
    const entry = parseHostEntry(raw);
    if (!entry || entry.host === '') return false;
    if (entry.port !== undefined && entry.port !== port) return false;
    return entry.wildcard ? host.endsWith(`.${entry.host}`) : host === entry.host;
  });
}

// `metadata` is the single-label alias GCE's resolver answers with the metadata server.
const BLOCKED_NAMES = new Set(['localhost', 'metadata.google.internal', 'metadata']);
// Names that never belong to the public internet, refused before any lookup so a hostile or
// misconfigured resolver cannot be consulted about them.
const BLOCKED_SUFFIXES = ['.localhost', '.internal', '.local', '.localdomain', '.home.arpa'];

/**
 * A target policy that may say how a target it refuses could be let through, where the policy
 * was made: `wcagai scan --no-allow-private` names its flag, a server its settings.
 */
export type GuardPolicy = TargetPolicy & {
  /** Closes a BLOCKED_TARGET message, in brackets. */
  refusalHint?: string;
};

/** The hint of a policy that does not give one: the server's and worker's, whose settings only their operator changes. */
export const SERVICE_REFUSAL_HINT = 'allowed only where the service sets ALLOW_PRIVATE_TARGETS=true or lists the host in SCAN_ALLOWED_HOSTS';

function blocked(policy: GuardPolicy, host: string, reason: string, address?: string): WcagaiError {
  return new WcagaiError('BLOCKED_TARGET', `refusing to scan ${host}: ${reason} (${policy.refusalHint ?? SERVICE_REFUSAL_HINT})`, {
    details: address === undefined ? { host } : { host, address },
  });
}

/** Refuses targets that are, or resolve to, non-public addresses; returns the addresses checked. */
export async function checkTarget(url: URL | string, policy: GuardPolicy): Promise<string[]> {
  // Re-validate URL objects too: a caller-built URL may still carry a file: scheme or credentials.
  const target = parseTargetUrl(typeof url === 'string' ? url : url.href);
  if (policy.allowPrivate || hostAllowed(target, policy.allowedHosts)) return [];

  const host = bareAddress(target.hostname);
  if (isIP(host) !== 0) {
    if (isPrivateAddress(host)) throw blocked(policy, host, `${host} is a private or reserved address`, host);
    return [host];
  }

  const name = host.toLowerCase().replace(/\.+$/, '');
  if (BLOCKED_NAMES.has(name) || BLOCKED_SUFFIXES.some((s) => name.endsWith(s))) {
    throw blocked(policy, name, 'host name is reserved for local or internal use');
  }

  const addresses = await policy.resolve(name);
  if (addresses.length === 0) {
    throw new WcagaiError('DNS_FAILURE', `cannot resolve ${name}: no addresses`, { details: { host: name } });
  }
  for (const address of addresses) {
    // Every answer counts: the browser may pick any of them, and an attacker controls the order.
    if (isIP(bareAddress(address)) === 0) throw blocked(policy, name, `resolver returned a non-IP answer "${address}"`, address);
    if (isPrivateAddress(address)) throw blocked(policy, name, `it resolves to private address ${address}`, address);
  }
  return addresses;
}

function parseBool(name: string, value: string | undefined, fallback: boolean): boolean {
  if (value === undefined || value.trim() === '') return fallback;
  const b = parseBoolSetting(value);
  if (b === null) throw new WcagaiError('USAGE', `${name} must be true or false (or 1/0, yes/no), got ${JSON.stringify(value)}`);
  return b;
}

/**
 * Builds the target policy from ALLOW_PRIVATE_TARGETS and SCAN_ALLOWED_HOSTS. A refusal tells to
 * change those variables unless `refusalHint` says otherwise (a command-line flag that wins over them).
 */
export function policyFromEnv(
  env: Record<string, string | undefined>,
  defaults: { allowPrivate: boolean; refusalHint?: string },
): GuardPolicy {
  return {
    refusalHint: defaults.refusalHint ?? 'set ALLOW_PRIVATE_TARGETS=true or list the host in SCAN_ALLOWED_HOSTS to allow it',
    allowPrivate: parseBool('ALLOW_PRIVATE_TARGETS', env['ALLOW_PRIVATE_TARGETS'], defaults.allowPrivate),
    allowedHosts: (env['SCAN_ALLOWED_HOSTS'] ?? '')
      .split(',')
      .map((h) => h.trim())
      .filter((h) => h !== ''),
    resolve: createCachingResolver(defaultResolver),
  };
}
