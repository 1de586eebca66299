/** Where the URL list of `wcagai scan` comes from: a URLs file or a (possibly nested, gzipped) sitemap. */
import { readFile } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import { maskUrl } from '../config/secrets.js';
import { WcagaiError, isWcagaiError } from '../errors/catalogue.js';
import { parseTargetUrl } from './target-guard.js';

/** Reads one URL a line, skipping blank lines and `#` comments; each URL is validated. */
export async function readUrlsFile(path: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new WcagaiError('USAGE', `cannot read URLs file ${path}: ${reason}`, { cause: err, details: { path } });
  }
  const urls: string[] = [];
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  lines.forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    try {
      urls.push(parseTargetUrl(line).href);
    } catch (err) {
      if (!isWcagaiError(err)) throw err;
      throw new WcagaiError(err.code, `${path}:${index + 1}: ${err.message}`, {
        cause: err,
        details: { path, line: index + 1 },
      });
    }
  });
  return urls;
}

/** Removes repeated URLs (compared in normalized form), keeping the first occurrence and the order. */
export function dedupeUrls(urls: string[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const url of urls) {
    let key = url.trim();
    try {
      key = new URL(key).href;
    } catch {
      // Not a URL: compare verbatim and let validation complain later.
    }
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(url);
  }
  return out;
}

export interface FetchSitemapOptions {
  /** Stop after this many page URLs. */
  limit?: number;
  signal?: AbortSignal;
  /** Per-request deadline; default 30 s. */
  timeoutMs?: number;
  /** Deadline for the whole walk (every document of an index); default none. */
  totalTimeoutMs?: number;
  /** Sitemap documents fetched at most (the index and its children); default 1,000. */
  maxDocuments?: number;
  fetchImpl?: typeof fetch;
  /**
   * Told of each child sitemap of an index that could not be read and was skipped, once the walk
   * succeeded (when it fails, its error names them instead).
   */
  onSkip?: (skipped: SkippedSitemap) => void;
  /**
   * Told, once the walk succeeded, when it stopped at `limit` with entries left unread: a page it
   * did not take, or a child sitemap it did not open (which may list pages or not).
   */
  onMore?: () => void;
}

/** A child sitemap left out of the walk: its URL and why (the error's message, naming it). */
export interface SkippedSitemap {
  sitemap: string;
  message: string;
}

// The sitemap protocol caps a sitemap at 50 MB uncompressed; anything larger is hostile or broken
// (and the cap is what keeps a gzip bomb from exhausting memory).
const MAX_SITEMAP_BYTES = 50 * 1024 * 1024;
// The protocol forbids nested indexes; following a few levels tolerates sloppy generators without
// letting a loop of indexes run forever.
const MAX_INDEX_DEPTH = 3;
// Failures quoted in the error of an index none of whose children could be read.
const MAX_QUOTED_FAILURES = 5;

/**
 * Collects page URLs from a sitemap or sitemap index (followed up to depth 3), de-duplicated, up
 * to `limit`. The walk is bounded in documents and, with `totalTimeoutMs`, in time: `limit`
 * counts pages only, so an index of thousands of empty children would otherwise be fetched whole.
 * A child sitemap that cannot be read (HTTP error, not XML, refused by the target policy…) is
 * skipped and reported through `onSkip`; the walk fails when the root cannot be read, when no
 * child of an index could be, or at its limits.
 */
export async function fetchSitemap(url: string, opts: FetchSitemapOptions = {}): Promise<string[]> {
  const limit = opts.limit ?? Number.POSITIVE_INFINITY;
  const maxDocuments = opts.maxDocuments ?? 1_000;
  const deadline = opts.totalTimeoutMs === undefined ? Number.POSITIVE_INFINITY : performance.now() + opts.totalTimeoutMs;
  const root = parseTargetUrl(url).href;
  const pages: string[] = [];
  const seenPages = new Set<string>();
  const seenSitemaps = new Set<string>();
  // Why each sitemap that could not be read failed: an index listing it again fails it again.
  const failures = new Map<string, WcagaiError>();
  // The walk's own limits end it whole, never as one child's failure.
  const walkLimits = new Set<unknown>();
  // <loc> entries of a urlset that are not absolute http(s) URLs (`/about`, `ftp:`): left out.
  const badLocs: string[] = [];
  // The walk stopped at `limit` with something left unread.
  let more = false;
  const walkLimit = (message: string): WcagaiError => {
    const err = usage(root, message);
    walkLimits.add(err);
    return err;
  };

  /** Reads one document; resolves to the children skipped below it. */
  const visit = async (sitemapUrl: string, depth: number): Promise<SkippedSitemap[]> => {
    if (pages.length >= limit) {
      if (!seenSitemaps.has(sitemapUrl)) more = true;
      return [];
    }
    const failedBefore = failures.get(sitemapUrl);
    if (failedBefore) throw failedBefore;
    if (seenSitemaps.has(sitemapUrl)) return [];
    if (seenSitemaps.size >= maxDocuments) throw walkLimit(`an index of more than ${maxDocuments} sitemaps; give one of its sitemaps instead`);
    const left = deadline - performance.now();
    if (left <= 0) throw walkLimit(`not read within ${opts.totalTimeoutMs} ms (${seenSitemaps.size} sitemaps read)`);
    seenSitemaps.add(sitemapUrl);
    let parsed: ParsedSitemap;
    try {
      parsed = await loadSitemap(sitemapUrl, { ...opts, timeoutMs: Math.max(1, Math.min(opts.timeoutMs ?? 30_000, Math.ceil(left))) });
    } catch (err) {
      if (isWcagaiError(err)) failures.set(sitemapUrl, err);
      throw err;
    }
    const skipped: SkippedSitemap[] = [];
    const failed: string[] = [];
    let read = 0;
    for (const [at, loc] of parsed.locs.entries()) {
      if (pages.length >= limit) {
        more ||= parsed.locs.slice(at).some((rest) => {
          const target = validLoc(rest);
          return target !== undefined && (parsed.kind === 'urlset' ? !seenPages.has(target) : !seenSitemaps.has(target));
        });
        break;
      }
      const target = validLoc(loc);
      // A loc that is not an http(s) URL is skipped rather than fatal: one bad entry in a
      // generated sitemap of thousands should not stop the scan.
      if (target === undefined) {
        if (parsed.kind === 'urlset') badLocs.push(loc);
        continue;
      }
      if (parsed.kind === 'urlset') {
        if (!seenPages.has(target)) {
          seenPages.add(target);
          pages.push(target);
        }
        continue;
      }
      if (depth >= MAX_INDEX_DEPTH) continue;
      try {
        skipped.push(...(await visit(target, depth + 1)));
        read++;
      } catch (err) {
        // Caller cancellation and the walk's limits end the walk; so does a child cut short by the
        // walk's deadline (the next one could not be read either).
        if (!isWcagaiError(err) || walkLimits.has(err)) throw err;
        if (deadline - performance.now() <= 0) throw walkLimit(`not read within ${opts.totalTimeoutMs} ms (${seenSitemaps.size} sitemaps read)`);
        // Each message names its sitemap (a target refused by the policy is named by host only).
        const message = err.message.startsWith(`sitemap ${target}:`) ? err.message : `sitemap ${target}: ${err.message}`;
        failed.push(message);
        skipped.push({ sitemap: target, message });
      }
    }
    if (read === 0 && failed.length > 0) {
      const quoted = failed.slice(0, MAX_QUOTED_FAILURES);
      if (failed.length > quoted.length) quoted.push(`and ${failed.length - quoted.length} more`);
      const err = usage(sitemapUrl, `none of its ${failed.length} sitemaps could be read: ${quoted.join('; ')}`);
      failures.set(sitemapUrl, err);
      throw err;
    }
    return skipped;
  };

  if (limit > 0) {
    const skipped = await visit(root, 0);
    // Every page entry refused (a generator writing relative `<loc>/about</loc>`): say so, rather
    // than answer an empty list the caller can only call "no URL to scan".
    if (pages.length === 0 && badLocs.length > 0) {
      // Quoted with any user:password@ masked (an entry may hold one: such a URL is refused too).
      const shown = maskUrl(badLocs[0]!, '***');
      const first = shown.length > 80 ? `${shown.slice(0, 80)}…` : shown;
      throw usage(root, `lists no page to scan: ${badLocs.length === 1 ? 'its one <loc> is' : `all ${badLocs.length} of its <loc> entries are`} not an http(s) URL wcagai can scan (absolute, without user:password@; such as "${first}")`);
    }
    const told = new Set<string>();
    for (const s of skipped) {
      if (told.has(s.sitemap)) continue;
      told.add(s.sitemap);
      opts.onSkip?.(s);
    }
    if (more) opts.onMore?.();
  }
  return pages;
}

function validLoc(loc: string): string | undefined {
  try {
    return parseTargetUrl(loc).href;
  } catch {
    return undefined;
  }
}

async function loadSitemap(url: string, opts: FetchSitemapOptions): Promise<ParsedSitemap> {
  const body = await download(url, opts);
  // Magic bytes rather than the `.gz` suffix: fetch already undoes Content-Encoding: gzip, so a
  // `.gz` URL may arrive decompressed, and gzip content may come from a URL without the suffix.
  let bytes = body;
  if (body.length >= 2 && body[0] === 0x1f && body[1] === 0x8b) {
    try {
      bytes = gunzipSync(body, { maxOutputLength: MAX_SITEMAP_BYTES });
    } catch (err) {
      throw usage(url, `cannot decompress gzip content: ${reason(err)}`, err);
    }
  }
  const parsed = parseSitemapXml(bytes.toString('utf8'));
  if (!parsed) throw usage(url, 'not an XML sitemap (expected <urlset> or <sitemapindex>)');
  return parsed;
}

function usage(url: string, message: string, cause?: unknown): WcagaiError {
  return new WcagaiError('USAGE', `sitemap ${url}: ${message}`, {
    ...(cause === undefined ? {} : { cause }),
    details: { sitemap: url },
  });
}

function reason(err: unknown): string {
  if (err instanceof Error) {
    // undici hides the useful part (ECONNREFUSED, ENOTFOUND…) in `cause`.
    const cause = err.cause as { code?: unknown; message?: unknown } | undefined;
    if (cause && typeof cause.code === 'string') return `${err.message} (${cause.code})`;
    if (cause && typeof cause.message === 'string') return `${err.message} (${cause.message})`;
    return err.message;
  }
  return String(err);
}

async function download(url: string, opts: FetchSitemapOptions): Promise<Buffer> {
  const fetchImpl = opts.fetchImpl ?? fetch;
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, timeoutMs);
  const onAbort = (): void => controller.abort(opts.signal?.reason);
  if (opts.signal?.aborted) onAbort();
  else opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const response = await fetchImpl(url, {
      signal: controller.signal,
      headers: { accept: 'application/xml, text/xml;q=0.9, */*;q=0.5', 'user-agent': 'wcagai-sitemap' },
    });
    if (response.status >= 400) {
      await response.body?.cancel().catch(() => undefined);
      throw usage(url, `HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}`);
    }
    return await readCapped(url, response);
  } catch (err) {
    if (isWcagaiError(err)) throw err;
    // The caller's cancellation is not a usage error: let it surface as the abort it is.
    if (opts.signal?.aborted && !timedOut) throw err;
    if (timedOut) throw usage(url, `timed out after ${timeoutMs} ms`, err);
    throw usage(url, `cannot fetch: ${reason(err)}`, err);
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onAbort);
  }
}

async function readCapped(url: string, response: Response): Promise<Buffer> {
  if (!response.body) return Buffer.alloc(0);
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > MAX_SITEMAP_BYTES) {
      await reader.cancel().catch(() => undefined);
      throw usage(url, `larger than ${MAX_SITEMAP_BYTES} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks);
}

// ---------------------------------------------------------------------------------------------
// XML scanning: just enough XML to read sitemaps without a parser dependency.

interface ParsedSitemap {
  kind: 'urlset' | 'sitemapindex';
  locs: string[];
}

/** Finds the `>` closing a tag, ignoring any inside quoted attribute values. */
function tagEnd(xml: string, from: number): number {
  let quote = '';
  for (let i = from; i < xml.length; i++) {
    const c = xml[i];
    if (quote) {
      if (c === quote) quote = '';
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '>') return i;
  }
  return -1;
}

/** Skips comments, CDATA, processing instructions and DOCTYPE at `lt`; returns the index after, or undefined. */
function skipMarkup(xml: string, lt: number): number | undefined {
  const skipTo = (close: string, from: number): number => {
    const end = xml.indexOf(close, from);
    return end < 0 ? xml.length : end + close.length;
  };
  if (xml.startsWith('<!--', lt)) return skipTo('-->', lt + 4);
  if (xml.startsWith('<![CDATA[', lt)) return skipTo(']]>', lt + 9);
  if (xml.startsWith('<?', lt)) return skipTo('?>', lt + 2);
  if (xml.startsWith('<!', lt)) {
    // A DOCTYPE may carry an internal subset in [...] containing '>' characters. The '[' is
    // looked for before the first '>' only: searching the rest of the document for it at every
    // `<!` made a page of them quadratic (a 2.5 KB gzipped sitemap held the server for 14 s).
    const gt = xml.indexOf('>', lt);
    const end = gt < 0 ? xml.length : gt;
    const inTag = xml.slice(lt, end).indexOf('[');
    if (inTag >= 0) return skipTo('>', skipTo(']', lt + inTag));
    return gt < 0 ? xml.length : gt + 1;
  }
  return undefined;
}

/** Parses a sitemap document; undefined when it is not a urlset or sitemapindex. */
export function parseSitemapXml(xml: string): ParsedSitemap | undefined {
  let kind: ParsedSitemap['kind'] | undefined;
  let locName = 'loc';
  const locs: string[] = [];
  let i = 0;
  for (;;) {
    const lt = xml.indexOf('<', i);
    if (lt < 0) break;
    const skipped = skipMarkup(xml, lt);
    if (skipped !== undefined) {
      i = skipped;
      continue;
    }
    const gt = tagEnd(xml, lt + 1);
    if (gt < 0) break;
    const tag = xml.slice(lt + 1, gt);
    const m = /^(\/?)([A-Za-z_][\w.:-]*)/.exec(tag);
    i = gt + 1;
    if (!m || m[1] === '/') continue;
    const name = m[2] ?? '';
    if (kind === undefined) {
      const colon = name.indexOf(':');
      const local = name.slice(colon + 1);
      if (local !== 'urlset' && local !== 'sitemapindex') return undefined;
      kind = local;
      // Only <loc> in the root's namespace prefix counts: <image:loc> etc. are not page URLs.
      locName = `${name.slice(0, colon + 1)}loc`;
      continue;
    }
    if (name !== locName || tag.endsWith('/')) continue;
    const read = readText(xml, gt + 1, locName);
    const loc = read.text.trim();
    if (loc !== '') locs.push(loc);
    i = read.next;
  }
  return kind === undefined ? undefined : { kind, locs };
}

/** Reads element text up to `</name>`, decoding entities outside CDATA and keeping CDATA verbatim. */
function readText(xml: string, from: number, name: string): { text: string; next: number } {
  let text = '';
  let i = from;
  for (;;) {
    const lt = xml.indexOf('<', i);
    if (lt < 0) return { text: text + decodeEntities(xml.slice(i)), next: xml.length };
    text += decodeEntities(xml.slice(i, lt));
    if (xml.startsWith('<![CDATA[', lt)) {
      const end = xml.indexOf(']]>', lt + 9);
      text += xml.slice(lt + 9, end < 0 ? xml.length : end);
      i = end < 0 ? xml.length : end + 3;
      continue;
    }
    const skipped = skipMarkup(xml, lt);
    if (skipped !== undefined) {
      i = skipped;
      continue;
    }
    const gt = tagEnd(xml, lt + 1);
    const next = gt < 0 ? xml.length : gt + 1;
    if (new RegExp(`^</${name.replace(/[.]/g, '\\.')}\\s*$`).test(xml.slice(lt, gt < 0 ? xml.length : gt))) {
      return { text, next };
    }
    i = next; // stray child markup inside <loc>: ignore it
  }
}

const NAMED_ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (whole, body: string) => {
    if (body.startsWith('#')) {
      const code = body[1] === 'x' || body[1] === 'X' ? parseInt(body.slice(2), 16) : parseInt(body.slice(1), 10);
      return Number.isFinite(code) && code >= 0 && code <= 0x10ffff ? String.fromCodePoint(code) : whole;
    }
    return NAMED_ENTITIES[body] ?? whole;
  });
}
