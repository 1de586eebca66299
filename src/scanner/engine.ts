import { isIP } from 'node:net';
import type { Logger } from 'pino';
import type { CDPSession, Frame, HTTPRequest, HTTPResponse, Page } from 'puppeteer-core';
import { DEFAULT_VIEWPORT, type PageResult, type PageTimings, type ScanOptions } from '../domain/scan.js';
import { ANSWERED_LOAD_TIMEOUT, WcagaiError, toWcagaiError, type ErrorCode } from '../errors/catalogue.js';
import { textForLog, urlForLog } from '../observability/redact.js';
import { findBrowser } from './browser.js';
import { startEgressProxy, type EgressProxy, type EgressRoute } from './egress-proxy.js';
import { axeRunSpec, validateScanOptions } from './options.js';
import { axeVersion, preloadScript, websocketGuardScript } from './page-script.js';
import { BrowserPool, type ContextMode, type Slot } from './pool.js';
import { emptyResult, toViolations, type RawAxeResult } from './results.js';
import { checkTarget, createCachingResolver, parseTargetUrl } from './target-guard.js';
import type { Scanner, ScannerStats, ScanRequestOptions, TargetPolicy } from './types.js';

/** Everything the engine needs; deadlines live here and nowhere else. */
export interface ScannerConfig {
  concurrency: number;
  /** One browser context for every page (default), or one per page: see ContextMode. */
  contextMode?: ContextMode;
  executablePath?: string;
  env?: Record<string, string | undefined>;
  extraArgs?: readonly string[];
  navigationTimeoutMs: number;
  settleQuietMs: number;
  settleMaxMs: number;
  axeTimeoutMs: number;
  scanTimeoutMs: number;
  maxScansPerBrowser: number;
  maxBrowserRssBytes: number;
  /**
   * After a scan, a page whose JavaScript heap has grown past this many bytes is garbage-collected
   * before its next scan (0 = leave it to the browser). See `isolate`.
   */
  gcHeapBytes?: number;
  /** How long cleaning a slot for its next scan may take before the slot is discarded instead (default: the navigation deadline, at most 5 s). */
  cleanupTimeoutMs?: number;
  policy: TargetPolicy;
  /** Where the egress proxy connects for a checked address (tests: public test addresses served on loopback). */
  egressRoute?: EgressRoute;
  logger?: Logger;
}

export const DEFAULT_SCANNER_CONFIG = {
  concurrency: 4,
  navigationTimeoutMs: 30_000,
  settleQuietMs: 100,
  settleMaxMs: 5_000,
  axeTimeoutMs: 30_000,
  scanTimeoutMs: 60_000,
  maxScansPerBrowser: 1_000,
  maxBrowserRssBytes: 2 * 2 ** 30,
  gcHeapBytes: 128 * 2 ** 20,
} as const;

/**
 * The deadlines of a command's `--timeout <ms>` (wcagai scan, wcagai leak): the whole scan of a
 * page within it, navigation and axe within their defaults or it, whichever is shorter.
 */
export function deadlinesOf(timeoutMs: number | undefined): Partial<Pick<ScannerConfig, 'scanTimeoutMs' | 'navigationTimeoutMs' | 'axeTimeoutMs'>> {
  if (!timeoutMs) return {};
  return { scanTimeoutMs: timeoutMs, navigationTimeoutMs: Math.min(DEFAULT_SCANNER_CONFIG.navigationTimeoutMs, timeoutMs), axeTimeoutMs: Math.min(DEFAULT_SCANNER_CONFIG.axeTimeoutMs, timeoutMs) };
}

const STORAGE_TYPES = 'local_storage,indexeddb,cache_storage,service_workers,file_systems,websql,shared_storage,storage_buckets';

/** A main-frame document: what the scan reports of the page it checked (see ScanEngine.currentDocument). */
interface PageDocument {
  /** Changes with every document the frame commits (not with a #fragment or history.pushState). */
  loaderId: string;
  url: string;
  /** The browser's error page for a load that failed; `url` is the one it could not load. */
  failed: boolean;
  response: HTTPResponse | null;
}

/** Per-scan state the request guard and the frame tracker write and the scan reads. */
interface ScanState {
  blocked: WcagaiError | null;
  /**
   * The responses of the main frame's navigations in this scan, by request id, which for a
   * navigation is the loader id of the document it commits: the response of the document on the
   * page is read from here, not from whichever navigation `goto` last saw (one the page's load
   * handler started may not have replaced the document yet, or never will: a 204).
   */
  responses: Map<string, HTTPResponse>;
  /** The page's own code left something that could still write after the scan (see page-script). */
  live: boolean;
  /** Its renderer died (the page is never lent again). */
  crashed: boolean;
  /**
   * Storage keys of every http(s) document the scan loaded, in any frame. A cross-site frame's
   * storage is partitioned by the top-level site (`http://b.test/^0http://a.test`), which clearing
   * by origin does not reach.
   */
  storageKeys: Set<string>;
  /** Origins of the documents whose storage key could not be read: cleared by origin instead. */
  origins: Set<string>;
  /** For those documents, every key they may have stored under (see candidateStorageKeys). */
  guessedKeys: Set<string>;
  /** Storage-key look-ups still in flight. */
  lookups: Set<Promise<void>>;
  /** The document URL each frame was last looked up for. */
  tracked: WeakMap<Frame, string>;
  /** More storage keys than are worth clearing one by one: the slot's whole context is discarded instead. */
  overflow: boolean;
  /** Host names of every http(s) request the scan's page made: their cookies are its own (see clearCookies). */
  hosts: Set<string>;
  /**
   * The scan's extra request headers and the one origin they go to (see ScanRequestOptions.headers);
   * with private targets allowed, request interception is on exactly while this is set.
   */
  extraHeaders: { origin: string; headers: Record<string, string> } | null;
  /**
   * Scripts the page is still loading. `load` does not wait for a module a page imports with
   * `import()` (nor for a script added after it): an app that renders from one is not rendered yet.
   */
  scripts: Set<HTTPRequest>;
  /** The page's number in this engine (1, 2, …; a page made after a crash or recycle gets a new one), for log lines. */
  pageNo: number;
  /** Heap collections forced on this page so far. */
  collections: number;
}

/**
 * Whether a cookie is sent to any of `hosts`, by its domain as CDP gives it: `.example.com` for a
 * domain cookie (that host and every one below it), `www.example.com` for a host-only cookie.
 */
export function cookieReaches(domain: string, hosts: ReadonlySet<string>): boolean {
  const d = domain.toLowerCase();
  if (!d.startsWith('.')) return hosts.has(d);
  if (hosts.has(d.slice(1))) return true;
  for (const host of hosts) if (host.endsWith(d)) return true;
  return false;
}

/**
 * Failed scans whose page is still sound, so it is cleaned and kept rather than thrown away (which
 * in a shared context retires the context and every idle page in it): the document answered an
 * error status or axe-core refused the scan's include/exclude selectors for it (its scripts ran:
 * it is parked first, as any page), or no document of the target was reached at all (nothing of
 * it ran; a redirect's cookies are still cleared).
 */
const REACHED_FAILURES = new Set<ErrorCode>(['HTTP_CLIENT_ERROR', 'HTTP_SERVER_ERROR', 'HTTP_RATE_LIMITED', 'INVALID_OPTIONS', 'UNSUPPORTED_SCHEME']);
const CLEANABLE_FAILURES = new Set<ErrorCode>([...REACHED_FAILURES, 'DNS_FAILURE', 'CONNECTION_FAILED', 'TLS_CERT_INVALID', 'REDIRECT_LOOP', 'BLOCKED_TARGET']);

/** Errors of a page that stopped answering: after them, the page is not asked which document it shows. */
const UNANSWERED = new Set<ErrorCode | undefined>(['SETTLE_TIMEOUT', 'AXE_TIMEOUT', 'SCAN_TIMEOUT', 'SCAN_ABORTED', 'BROWSER_CRASHED']);

/**
 * How long the page may take to say which document it shows (a CDP call its renderer's main
 * thread answers, in about a millisecond when idle); a page busy in a script never answers.
 */
const DOCUMENT_PROBE_MS = 1_000;

/** Enough for any real page; a page that keeps spawning frames costs its slot a fresh context instead. */
const MAX_TRACKED_STORAGE_KEYS = 200;

/** Races a promise against a deadline; the loser's rejection is swallowed so it cannot go unhandled. */
function deadline<T>(work: Promise<T>, ms: number, code: ErrorCode, message: string, signal?: AbortSignal): Promise<T> {
  work.catch(() => undefined);
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new WcagaiError(code, message)), ms);
    const onAbort = () => reject(new WcagaiError('SCAN_ABORTED', 'scan aborted'));
    signal?.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    });
  });
}

/** `work`'s value, or `fallback` once `ms` passed without one; `work`'s rejection passes through. */
function within<T, F>(work: Promise<T>, ms: number, fallback: F): Promise<T | F> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<F>((resolve) => (timer = setTimeout(() => resolve(fallback), ms)));
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

const NET_ERRORS: Array<[RegExp, ErrorCode]> = [
  [/ERR_NAME_NOT_RESOLVED|ERR_NAME_RESOLUTION_FAILED/, 'DNS_FAILURE'],
  [/ERR_BLOCKED_BY_CLIENT/, 'BLOCKED_TARGET'],
  // The site asked for HTTP authentication (401 with a challenge) and the browser had none to give.
  [/ERR_INVALID_AUTH_CREDENTIALS/, 'HTTP_CLIENT_ERROR'],
  [/ERR_ABORTED/, 'NON_HTML_DOCUMENT'],
  // An untrusted, expired, revoked or misnamed certificate, or a redirect loop: the same answer
  // each time, so no retry (and no DLQ replay before the site is fixed) can succeed. Not the
  // passing ones (a revocation check that could not be made, a certificate store that changed).
  [/net::ERR_CERT_(COMMON_NAME_INVALID|DATE_INVALID|AUTHORITY_INVALID|CONTAINS_ERRORS|NO_REVOCATION_MECHANISM|REVOKED|INVALID|WEAK_SIGNATURE_ALGORITHM|NON_UNIQUE_NAME|WEAK_KEY|NAME_CONSTRAINT_VIOLATION|VALIDITY_TOO_LONG|SYMANTEC_LEGACY|KNOWN_INTERCEPTION_BLOCKED)\b/, 'TLS_CERT_INVALID'],
  [/ERR_TOO_MANY_REDIRECTS/, 'REDIRECT_LOOP'],
  [/net::ERR_/, 'CONNECTION_FAILED'],
  [/Target closed|Session closed|Connection closed|detached Frame|Protocol error/i, 'BROWSER_CRASHED'],
];

/** `answered`: the main document's response had arrived (only its load was still running). */
function classifyNavigationError(err: unknown, timeoutMs: number, answered = false): WcagaiError {
  if (err instanceof WcagaiError) return err;
  const e = err as Error;
  if (e?.name === 'TimeoutError') {
    const message = answered ? `${ANSWERED_LOAD_TIMEOUT} within ${timeoutMs} ms (a subresource still loading)` : `navigation did not finish within ${timeoutMs} ms`;
    return new WcagaiError('NAVIGATION_TIMEOUT', message, { cause: err });
  }
  const message = e?.message ?? String(err);
  for (const [pattern, code] of NET_ERRORS) if (pattern.test(message)) return new WcagaiError(code, message.split('\n')[0]!, { cause: err });
  return toWcagaiError(err);
}

/** The http(s) origin of a frame's document, or null (about:blank, srcdoc, data:, blob:). */
function frameOrigin(frame: Frame): string | null {
  try {
    const u = new URL(frame.url());
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.origin : null;
  } catch {
    return null;
  }
}

/** The CDP id of a request (for a navigation, the loader id of the document it commits), or null. */
function requestId(req: HTTPRequest): string | null {
  // puppeteer keeps it on `id`; it is not part of its typed API.
  const id = (req as unknown as { id?: unknown }).id;
  return typeof id === 'string' ? id : null;
}

/** The host name of an http(s) request, lower-cased, or null. */
function hostOf(url: string): string | null {
  if (!url.startsWith('http:') && !url.startsWith('https:')) return null;
  try {
    return new URL(url).hostname.toLowerCase();
  } catch {
    return null;
  }
}

/** The host of a storage key (`http://b.test/^0http://a.test`: b.test) or of an origin, or null. */
function storageHost(keyOrOrigin: string): string | null {
  return hostOf(keyOrOrigin.split('^', 1)[0]!);
}

/** The URLs name one document but for their fragments: going from one to the other would not load a page. */
export function sameDocument(current: string, next: string): boolean {
  try {
    const a = new URL(current);
    const b = new URL(next);
    if (a.protocol !== 'http:' && a.protocol !== 'https:') return false;
    a.hash = '';
    b.hash = '';
    return a.href === b.href;
  } catch {
    return false;
  }
}

/** True when `key` is the storage key of a document of `origin` (first-party or partitioned). */
function keyBelongsTo(key: string, origin: string): boolean {
  return key === `${origin}/` || key.startsWith(`${origin}/^`);
}

/**
 * The storage key of a frame's document of `origin`, or null when the browser cannot say. Asked
 * while a cross-site frame is still committing, the browser answers for the initial empty document
 * it replaces, whose key is the parent's: such an answer is not the frame's, so it is asked again.
 */
async function storageKeyOf(session: CDPSession, frame: Frame, origin: string): Promise<string | null> {
  // puppeteer keeps the CDP frame id on `_id`; it is not part of its typed API.
  const frameId = (frame as unknown as { _id?: unknown })._id;
  if (typeof frameId !== 'string') return null;
  for (let attempt = 0; attempt < 4; attempt++) {
    if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, 25 * 2 ** attempt));
    if (frame.detached) return null;
    let key: string;
    try {
      key = (await session.send('Storage.getStorageKeyForFrame', { frameId })).storageKey;
    } catch {
      try {
        key = (await session.send('Storage.getStorageKey', { frameId })).storageKey;
      } catch {
        return null;
      }
    }
    if (keyBelongsTo(key, origin)) return key;
  }
  return null;
}

/**
 * The keys a document of `origin` may have stored under when the browser could not name it:
 * first-party, and partitioned under the top-level site, which is the top origin's scheme with
 * its registrable domain. Without a public-suffix list every suffix of the top host stands in for
 * that domain: clearing a key nothing was stored under costs one call and changes nothing.
 */
export function candidateStorageKeys(origin: string, topOrigin: string | null): string[] {
  const keys = [`${origin}/`];
  if (topOrigin === null) return keys;
  const top = new URL(topOrigin);
  const host = top.hostname;
  const labels = host.split('.');
  const sites = isIP(host.replace(/^\[|\]$/g, '')) !== 0 || labels.length < 2 ? [host] : labels.slice(0, -1).map((_, i) => labels.slice(i).join('.'));
  for (const site of sites) {
    const partition = `${top.protocol}//${site}`;
    // `^0` names the top-level site; `^31` marks a same-site frame below a cross-site ancestor.
    keys.push(`${origin}/^0${partition}`, `${origin}/^0${partition}^31`);
  }
  return keys;
}

/**
 * The scan engine: a warm browser pool, target checks on the page and on every request it makes,
 * adaptive settle, axe-core in every frame, and per-phase deadlines with coded errors.
 */
export class ScanEngine implements Scanner {
  private readonly states = new WeakMap<Page, ScanState>();
  /** Slots lent to a scan, from its start until its page is cleaned. */
  private readonly scanning = new Set<Slot>();
  private readonly requestPolicy: TargetPolicy;
  private gcRuns = 0;
  private pagesMade = 0;

  private constructor(
    private readonly config: ScannerConfig,
    private readonly pool: BrowserPool,
    requestPolicy: TargetPolicy,
    private readonly egress: EgressProxy | null,
  ) {
    this.requestPolicy = requestPolicy;
  }

  /** Finds the browser, starts the pool and warms every page. */
  static async create(config: ScannerConfig): Promise<ScanEngine> {
    const executablePath = config.executablePath ?? (await findBrowser(config.env ?? process.env));
    let engine: ScanEngine | undefined;
    const log = config.logger;
    const requestPolicy = { ...config.policy, resolve: createCachingResolver(config.policy.resolve, 5_000) };
    // Private targets refused: the browser reaches the network only through the egress proxy.
    const egress = config.policy.allowPrivate ? null : await startEgressProxy(requestPolicy, config.egressRoute);
    const pool = new BrowserPool({
      concurrency: config.concurrency,
      contextMode: config.contextMode ?? 'shared',
      executablePath,
      extraArgs: [...(config.extraArgs ?? []), ...(egress?.args ?? [])],
      maxScansPerBrowser: config.maxScansPerBrowser,
      maxBrowserRssBytes: config.maxBrowserRssBytes,
      setupPage: (page, session) => engine!.setupPage(page, session),
      events: {
        onLaunch: (info) => log?.info({ event: 'browser.launch', ...info }, 'browser started'),
        onDisconnect: (info) => log?.warn({ event: 'browser.disconnect', ...info }, 'browser disconnected'),
        onHung: (info) => log?.error({ event: 'browser.hung', ...info }, 'browser stopped answering; killing it'),
      },
    });
    engine = new ScanEngine(config, pool, requestPolicy, egress);
    try {
      await pool.warm();
    } catch (err) {
      await engine.close();
      throw err;
    }
    return engine;
  }

  stats(): ScannerStats {
    return { ...this.pool.snapshot(), heapCollections: this.gcRuns };
  }

  async close(): Promise<void> {
    await this.pool.close();
    await this.egress?.close();
  }

  /** Scans one URL. Page failures come back as a result with `status: "error"`, never as a throw. */
  async scan(url: string, options: ScanOptions, request: ScanRequestOptions = {}): Promise<PageResult> {
    const started = performance.now();
    const result = emptyResult(url);
    try {
      validateScanOptions(options);
      const target = parseTargetUrl(url);
      await checkTarget(target, this.config.policy);
      return await this.pool.use(async (slot) => {
        this.scanning.add(slot);
        try {
          return await this.scanOn(slot, target.href, url, options, result, request);
        } finally {
          this.scanning.delete(slot);
        }
      });
    } catch (err) {
      // Outside a scan's phases the browser going away shows as a bare protocol error (opening a
      // page on a dead browser): the same crash, so the same code, not INTERNAL.
      const error = toWcagaiError(err);
      const crashed = error.code === 'INTERNAL' && /Target closed|Session closed|Connection closed|Protocol error/i.test(error.message);
      this.fail(result, crashed ? new WcagaiError('BROWSER_CRASHED', `browser went away: ${error.message.split('\n')[0]}`, { cause: err }) : error);
      return result;
    } finally {
      result.timings.totalMs = Math.round(performance.now() - started);
    }
  }

  /** One scan on a lent slot, with its extra request headers (if any) on for exactly its duration. */
  private async scanOn(slot: Slot, href: string, url: string, options: ScanOptions, result: PageResult, request: ScanRequestOptions): Promise<{ value: PageResult; reusable: boolean }> {
    const headers = request.headers && Object.keys(request.headers).length ? request.headers : null;
    if (!headers) return this.scanPhases(slot, href, url, options, result, request);
    const state = this.states.get(slot.page)!;
    // Lower-case, as the page's own headers come: a name given in another case replaces, never doubles, the page's.
    state.extraHeaders = { origin: new URL(href).origin, headers: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v])) };
    // With the target policy on, its interception is always on and its guard adds the headers.
    const ownInterception = this.config.policy.allowPrivate;
    // Outside the scan's deadline: a browser that stopped answering must not hold the scan until
    // the protocol timeout (the page is then given back unusable, and the browser checked).
    const answerMs = Math.min(this.config.navigationTimeoutMs, 5_000);
    let out: { value: PageResult; reusable: boolean } | undefined;
    try {
      if (ownInterception) await deadline(slot.page.setRequestInterception(true), answerMs, 'BROWSER_CRASHED', `the browser did not answer within ${answerMs} ms`);
      out = await this.scanPhases(slot, href, url, options, result, request);
      return out;
    } finally {
      // Off before the headers go, so a request paused meanwhile is still continued.
      if (ownInterception) {
        const off = await within(slot.page.setRequestInterception(false).then(() => true, () => false), answerMs, false);
        if (!off && out) out.reusable = false;
      }
      state.extraHeaders = null;
    }
  }

  /**
   * The overrides for a request under interception: the scan's extra headers merged over the
   * page's own when the request goes to the scanned origin, nothing otherwise.
   */
  private headerOverrides(state: ScanState | undefined, req: HTTPRequest): { headers: Record<string, string> } | undefined {
    const extra = state?.extraHeaders;
    if (!extra) return undefined;
    let origin: string;
    try {
      origin = new URL(req.url()).origin;
    } catch {
      return undefined;
    }
    return origin === extra.origin ? { headers: { ...req.headers(), ...extra.headers } } : undefined;
  }

  /** A scan's phases under the scan deadline, then its page cleaned (or thrown away). */
  private async scanPhases(slot: Slot, href: string, url: string, options: ScanOptions, result: PageResult, request: ScanRequestOptions): Promise<{ value: PageResult; reusable: boolean }> {
    // Cancelled while it waited for a page (a worker shutting down): the page is not touched. (An
    // aborted signal fires no event, so the deadline below would not see it.)
    if (request.signal?.aborted) {
      this.fail(result, new WcagaiError('SCAN_ABORTED', 'scan aborted before it started'));
      return { value: result, reusable: true };
    }
    // The phases write into a draft, copied into the result when they end or the scan gives up on
    // them: a run past its deadline (axe answering just after it) cannot change a result already
    // reported as failed.
    const draft: PageResult = { ...result, timings: { ...result.timings } };
    const publish = () => Object.assign(result, draft, { timings: Object.assign(result.timings, draft.timings) });
    const crash = pageCrash(slot.page);
    try {
      const work = Promise.race([this.runPhases(slot, href, options, draft), crash.crashed]);
      await deadline(work, this.config.scanTimeoutMs, 'SCAN_TIMEOUT', `scan did not finish within ${this.config.scanTimeoutMs} ms`, request.signal);
      publish();
    } catch (err) {
      publish();
      let error = toWcagaiError(err);
      if (this.pool.isStale(slot) && error.retryable) error = new WcagaiError('BROWSER_CRASHED', `browser crashed during the scan: ${error.message}`);
      this.fail(result, error);
      // A page that answered an error status, or was never reached, is cleaned like a scanned
      // one; anything else (a hung or crashed page) is thrown away, and a shared context with it.
      if (this.pool.isStale(slot) || !CLEANABLE_FAILURES.has(error.code)) return { value: result, reusable: false };
      if (!REACHED_FAILURES.has(error.code)) this.states.get(slot.page)!.live = false;
      return { value: result, reusable: await this.clean(slot, url) };
    } finally {
      crash.off();
    }
    return { value: result, reusable: await this.clean(slot, url) };
  }

  private fail(result: PageResult, error: WcagaiError): void {
    result.status = 'error';
    result.violations = [];
    result.error = { code: error.code, message: error.message, retryable: error.retryable };
    this.config.logger?.debug({ event: 'scan.error', url: urlForLog(result.url), code: error.code }, textForLog(error.message));
  }

  private async setupPage(page: Page, session: CDPSession): Promise<void> {
    const state: ScanState = {
      blocked: null,
      responses: new Map(),
      live: true,
      crashed: false,
      origins: new Set(),
      guessedKeys: new Set(),
      storageKeys: new Set(),
      lookups: new Set(),
      tracked: new WeakMap(),
      overflow: false,
      hosts: new Set(),
      extraHeaders: null,
      scripts: new Set(),
      pageNo: ++this.pagesMade,
      collections: 0,
    };
    this.states.set(page, state);
    page.on('error', () => (state.crashed = true));
    page.on('framenavigated', (frame) => this.trackFrame(page, session, frame));
    // A dialog blocks its page until answered: alert() while loading would hold `load` until the
    // navigation timed out. Dismissed at once; a beforeunload prompt is accepted so the page can be parked.
    page.on('dialog', (dialog) => {
      void (dialog.type() === 'beforeunload' ? dialog.accept() : dialog.dismiss()).catch(() => undefined);
    });
    // A window the page opens would live on in the context (writing storage after the clean,
    // navigating its opener during a later scan): closed as it opens.
    page.on('popup', (popup) => void popup?.close({ runBeforeUnload: false }).catch(() => undefined));
    page.on('request', (req) => {
      const host = hostOf(req.url());
      if (host) state.hosts.add(host);
      if (req.resourceType() === 'script') state.scripts.add(req);
    });
    for (const event of ['requestfinished', 'requestfailed', 'requestservedfromcache'] as const) page.on(event, (req: HTTPRequest) => state.scripts.delete(req));
    page.on('response', (res) => {
      const id = requestId(res.request());
      if (id && res.request().isNavigationRequest() && res.frame() === page.mainFrame()) state.responses.set(id, res);
    });
    await Promise.all([
      page.evaluateOnNewDocument(preloadScript()),
      page.setBypassServiceWorker(true),
      page.setViewport(DEFAULT_VIEWPORT),
    ]);
    page.setDefaultNavigationTimeout(this.config.navigationTimeoutMs);
    // An HTTP authentication challenge is answered with no credentials, so its 401 comes back as
    // the response: left to headless Chromium, which has nobody to ask, an image or frame behind
    // one never finishes and the page never loads (the scan ran into its timeout). This needs the
    // protocol's request interception on every page: without the target policy's own
    // interception, puppeteer continues each request itself (one round trip a request).
    await page.authenticate({ username: '', password: '' });
    if (!this.config.policy.allowPrivate) {
      // WebSocket handshakes never reach request interception: refuse them in the page instead.
      await page.evaluateOnNewDocument(websocketGuardScript());
      await page.setRequestInterception(true);
      page.on('request', (req) => void this.guardRequest(page, req));
    } else {
      // Interception is on only while a scan with extra headers runs (see scanOn).
      page.on('request', (req) => {
        if (state.extraHeaders && !req.isInterceptResolutionHandled()) void req.continue(this.headerOverrides(state, req)).catch(() => undefined);
      });
    }
    void session;
  }

  /** Notes the origin and storage key of every document a scan commits, in any frame, while it is there. */
  private trackFrame(page: Page, session: CDPSession, frame: Frame): void {
    const state = this.states.get(page);
    const origin = frameOrigin(frame);
    if (!state || origin === null || state.tracked.get(frame) === frame.url()) return;
    state.tracked.set(frame, frame.url());
    if (state.storageKeys.size + state.guessedKeys.size + state.lookups.size >= MAX_TRACKED_STORAGE_KEYS) {
      state.overflow = true;
      return;
    }
    const top = frameOrigin(page.mainFrame());
    const lookup = storageKeyOf(session, frame, origin).then((key) => {
      if (key) return void state.storageKeys.add(key);
      state.origins.add(origin);
      for (const candidate of candidateStorageKeys(origin, top)) state.guessedKeys.add(candidate);
    });
    state.lookups.add(lookup);
    void lookup.finally(() => state.lookups.delete(lookup));
  }

  /**
   * Makes a slot's page clean for the next scan. The page is parked on about:blank first, so its
   * timers, workers, requests and open IndexedDB connections (its frames' too) stop and nothing
   * writes after the clear; then the context's cookies, the storage of every partition the scan
   * touched and the tab's window.name are cleared. False when the slot is not worth cleaning: its context is discarded.
   */
  private async isolate(slot: Slot): Promise<boolean> {
    const { page, session } = slot;
    const state = this.states.get(page)!;
    // Its checks are done: from here on the scan holds nothing for itself, so two scans of one
    // site finishing together do not each leave the other's state to the other.
    this.scanning.delete(slot);
    for (const frame of page.frames()) this.trackFrame(page, session, frame);
    await Promise.all(state.lookups);
    if (state.overflow) return false;
    // A page that left nothing running (no timers, lifecycle handlers, workers, sockets, frames)
    // cannot write after the clear, so it skips the park: most of a static page's scan cost.
    if (state.live) await this.park(page);
    // Storage of a host that a scan still running beside this one uses is not pulled from under
    // it (an app's localStorage emptied, its IndexedDB connections closed, mid-scan): it is handed
    // to those scans, and the last of them to finish clears it, as with cookies.
    const beside = this.runningBeside(slot);
    const keep = new Set(beside.flatMap((other) => [...other.hosts]));
    const own = (set: Set<string>, pick: (other: ScanState) => Set<string>) =>
      [...set].filter((key) => {
        const host = storageHost(key);
        if (host === null || !keep.has(host)) return true;
        for (const other of beside) if (other.hosts.has(host)) pick(other).add(key);
        return false;
      });
    // The heap is read beside the clearing, which waits on the browser process, so it costs nothing.
    const [heap] = await Promise.all([
      this.heapToCollect(session),
      this.clearCookies(slot, keep),
      // The tab's window.name outlives its documents, the navigations of later scans included (of
      // any site): it is the tab's, not an origin's, so no storage clear reaches it.
      page.evaluate(() => void (window.name = '')),
      ...own(state.storageKeys, (o) => o.storageKeys).map((storageKey) => session.send('Storage.clearDataForStorageKey', { storageKey, storageTypes: STORAGE_TYPES })),
      ...own(state.origins, (o) => o.origins).map((origin) => session.send('Storage.clearDataForOrigin', { origin, storageTypes: STORAGE_TYPES })),
      // A guess the browser finds malformed (a partition it would never make) held nothing to clear.
      ...own(state.guessedKeys, (o) => o.guessedKeys).map((storageKey) => session.send('Storage.clearDataForStorageKey', { storageKey, storageTypes: STORAGE_TYPES }).catch(() => undefined)),
    ]);
    state.origins.clear();
    state.storageKeys.clear();
    state.guessedKeys.clear();
    state.hosts.clear();
    state.tracked = new WeakMap();
    if (heap) {
      await session.send('HeapProfiler.collectGarbage');
      this.gcRuns++;
      state.collections++;
      // How often a page's heap reaches the limit, and when each page first does: until then its
      // renderer may still be growing towards its working size.
      this.config.logger?.info({ event: 'browser.heap_collected', page: state.pageNo, collections: state.collections, heapMb: Math.round(heap / 2 ** 20) }, 'page heap collected');
    }
    return true;
  }

  /**
   * Clears the cookies a scan may have left, and none that a scan still running beside it in the
   * same context sends. Alone in its context, it clears them all. Beside others, it deletes every
   * cookie except those sent to a host one of them has requested: clearing the whole jar would
   * pull cookies from under a scan of another site mid-page (a session cookie set by its first
   * response, then missing from its next request). A cookie kept that way is cleared by the last
   * scan of that site to finish.
   */
  private async clearCookies(slot: Slot, keep: ReadonlySet<string>): Promise<void> {
    if (keep.size === 0) return void (await slot.session.send('Network.clearBrowserCookies'));
    const { cookies } = await slot.session.send('Network.getAllCookies');
    await Promise.all(
      cookies
        .filter((c) => !cookieReaches(c.domain, keep))
        .map((c) => slot.session.send('Network.deleteCookies', { name: c.name, domain: c.domain, path: c.path, ...(c.partitionKey ? { partitionKey: c.partitionKey } : {}) })),
    );
  }

  /** The states of the scans still running in the slot's context (none with a context per slot). */
  private runningBeside(slot: Slot): ScanState[] {
    const out: ScanState[] = [];
    for (const other of this.scanning) {
      const state = other !== slot && other.holder === slot.holder ? this.states.get(other.page) : undefined;
      if (state) out.push(state);
    }
    return out;
  }

  /**
   * Navigates the page to about:blank from inside, so its timers, workers, requests and IndexedDB
   * connections (its frames' too) stop. A browser-initiated about:blank would swap renderer
   * processes twice per scan (there and back), costing more than the scan's own navigation.
   */
  private async park(page: Page): Promise<void> {
    await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.evaluate(() => location.replace('about:blank')).catch(() => undefined)]);
  }

  /**
   * A reused page's renderer keeps the garbage of every scan it ran (axe-core allocates freely) and
   * its heap keeps growing towards V8's own limit, which takes hundreds of scans: 450 to 750 MB of
   * renderer per slot over 400 scans of the fixture site's healthy pages, reached slowly enough
   * to look like a leak. A full collection whenever the heap passes gcHeapBytes keeps each
   * renderer at about 200 to 400 MB, at the cost of a collection after most scans of its heavy
   * page (61 in those 400 scans; 0 to 2 in the ~300 scans of a CI soak, which leaves that page
   * out). The heap's size in bytes when it is due, else 0.
   */
  private async heapToCollect(session: CDPSession): Promise<number> {
    const limit = this.config.gcHeapBytes ?? DEFAULT_SCANNER_CONFIG.gcHeapBytes;
    if (limit <= 0) return 0;
    const heap = await session.send('Runtime.getHeapUsage');
    return heap.totalSize >= limit ? heap.totalSize : 0;
  }

  /** Every request a page makes (redirects, subresources, iframes) is checked like the page itself. */
  private async guardRequest(page: Page, req: HTTPRequest): Promise<void> {
    if (req.isInterceptResolutionHandled()) return;
    const url = req.url();
    const scheme = url.slice(0, url.indexOf(':'));
    try {
      if (scheme === 'data' || scheme === 'blob') return void (await req.continue());
      if (scheme !== 'http' && scheme !== 'https') throw new WcagaiError('UNSUPPORTED_SCHEME', `request to ${scheme}: refused`);
      await checkTarget(url, this.requestPolicy);
      await req.continue(this.headerOverrides(this.states.get(page), req));
    } catch (err) {
      const state = this.states.get(page);
      if (state && req.isNavigationRequest() && req.frame() === page.mainFrame()) {
        const error = toWcagaiError(err);
        // A name that did not resolve (a resolver failing for a moment) is retried like the scan's
        // own look-up, not refused for good.
        state.blocked = error.code === 'BLOCKED_TARGET' || error.code === 'DNS_FAILURE' ? error : new WcagaiError('BLOCKED_TARGET', `${url}: ${error.message}`);
      }
      this.config.logger?.debug({ event: 'request.blocked', url: urlForLog(url) }, 'request refused by target policy');
      await req.abort('blockedbyclient').catch(() => undefined);
    }
  }

  /** Cleans a slot after a scan (see isolate); false when it could not be: it is thrown away instead. */
  private async clean(slot: Slot, url: string): Promise<boolean> {
    const isolateMs = this.config.cleanupTimeoutMs ?? Math.min(this.config.navigationTimeoutMs, 5_000);
    // A renderer that dies while its page is parked never answers the park: the page is given up
    // at once, not when the cleanup deadline passes.
    const crash = pageCrash(slot.page, this.states.get(slot.page)!.crashed);
    const cleaned = Promise.race([this.isolate(slot), crash.crashed]);
    return deadline(cleaned, isolateMs, 'INTERNAL', `slot cleanup did not finish within ${isolateMs} ms`).finally(crash.off).then(
      (clean) => clean,
      (err: unknown) => {
        this.config.logger?.warn({ event: 'slot.cleanup_failed', url: urlForLog(url), err: (err as Error)?.message }, 'page could not be cleaned; discarding it');
        return false;
      },
    );
  }

  /** The egress proxy's refusal of the URL's host, when it refused it (a name that rebound to a private address). */
  private egressRefusal(url: string): WcagaiError | undefined {
    try {
      return this.egress?.refusal(new URL(url).hostname);
    } catch {
      return undefined;
    }
  }

  /**
   * Navigates and waits for `load`. Chromium sometimes never commits the frame of an `<object>`
   * whose resource came back as an error while other tabs of the same context load the same site
   * (seen on the GOV.UK corpus: about one such page in twenty at concurrency 4): `load` never comes.
   * A stalled load (see LoadWatch) is navigated again: once, and a second time while the deadline
   * leaves room for two more stall windows (the frame that failed to commit twice in a row, under
   * load, was scanned without its content). The last stall scans the page as it stands.
   * `goto`'s response is not used: it is that of the last main-frame navigation it saw, which for
   * a page whose load handler sends it on is the next document's while this one still shows.
   */
  private async navigate(page: Page, url: string, timeoutMs: number): Promise<void> {
    const started = performance.now();
    const watch = new LoadWatch(page);
    try {
      for (let attempt = 1; ; attempt++) {
        const remaining = Math.max(1, timeoutMs - (performance.now() - started));
        watch.reset();
        const loaded = page.goto(url, { waitUntil: 'load', timeout: remaining });
        loaded.catch(() => undefined);
        const winner = await Promise.race([loaded.then(() => 'loaded' as const), watch.stalled(remaining)]);
        if (winner === 'loaded') return;
        const left = timeoutMs - (performance.now() - started);
        const again = attempt === 1 || (attempt < MAX_LOAD_TRIES && left >= 2 * LOAD_STALL_MS);
        this.config.logger?.warn(
          { event: 'navigation.load_stalled', url: urlForLog(url), attempt, pending: watch.pendingFrames() },
          again ? 'load stalled on frames that never commit; navigating again' : 'load stalled again; scanning the page as it stands',
        );
        if (!again) return;
      }
    } finally {
      watch.close();
    }
  }

  private async runPhases(slot: Slot, url: string, options: ScanOptions, result: PageResult): Promise<void> {
    const { page } = slot;
    const { navigationTimeoutMs } = this.config;
    const state = this.states.get(page)!;
    state.blocked = null;
    state.responses.clear();
    state.live = true;
    state.origins.clear();
    state.storageKeys.clear();
    state.guessedKeys.clear();
    state.hosts.clear();
    state.tracked = new WeakMap();
    state.overflow = false;
    state.scripts.clear();
    const timings: PageTimings = result.timings;
    const viewport = options.viewport ?? DEFAULT_VIEWPORT;
    const current = page.viewport();
    if (current?.width !== viewport.width || current?.height !== viewport.height) await page.setViewport(viewport);

    // The page still shows the previous scan's document (nothing was left running, so it was not
    // parked): a URL that differs from it only in its #fragment would not load anything, and the
    // old DOM would be scanned. Parked first, so the page is requested again.
    if (sameDocument(page.url(), url)) await this.park(page);
    const t = performance.now();
    try {
      await this.navigate(page, url, navigationTimeoutMs);
    } catch (err) {
      throw state.blocked ?? this.egressRefusal(url) ?? classifyNavigationError(err, navigationTimeoutMs, state.responses.size > 0);
    }
    timings.navigationMs = Math.round(performance.now() - t);
    let scanned = await this.acceptDocument(slot, url, result);
    for (let moves = 0; ; moves++) {
      try {
        await this.checkPage(page, url, options, result, scanned.response);
        // The checks are of one document only if it is still the one accepted: one that replaced
        // it between the settle and axe-core would have had part of them.
        if (!(await this.replaced(slot, scanned))) return;
      } catch (err) {
        // The page sent itself elsewhere after its load (a meta refresh, a script setting
        // location): the document it went to is the one to scan, once it has loaded. An
        // evaluation that reached that document instead of failing fails there in its own way
        // (no settle tracker, no axe-core on about:blank): the document is asked, not the message.
        // A deadline or a crash is what it says: a page that did not answer its checks would not
        // answer the question either.
        if (!navigatedAway(err) && (UNANSWERED.has((err as WcagaiError).code) || !(await this.replaced(slot, scanned)))) throw err;
      }
      if (moves >= MAX_CLIENT_REDIRECTS) throw new WcagaiError('AXE_FAILED', `page navigated away during the checks of ${moves + 1} documents in a row`);
      this.config.logger?.info({ event: 'navigation.client_redirect', url: urlForLog(url), from: urlForLog(result.finalUrl ?? url) }, 'page navigated after its load; scanning the document it went to');
      const followed = performance.now();
      await this.followClientRedirect(page);
      timings.navigationMs += Math.round(performance.now() - followed);
      scanned = await this.acceptDocument(slot, url, result);
    }
  }

  /**
   * The main frame's document as the browser has it: its loader id, URL, whether it is the
   * browser's error page for a load that failed, and the response it came from (null for a
   * document no HTTP response made: about:blank, an error page).
   *
   * Asked of the page (Page.getFrameTree), which its renderer's main thread answers: a page busy
   * in a script answers nothing, so after DOCUMENT_PROBE_MS the frame as puppeteer last saw it
   * stands in (its URL and loader id, from the events of its commits), and the scan goes on to
   * meet its own deadline (settle, axe) rather than wait for the answer until the scan's.
   */
  private async currentDocument(slot: Slot): Promise<PageDocument> {
    const responses = this.states.get(slot.page)!.responses;
    const answer = await within(slot.session.send('Page.getFrameTree'), DOCUMENT_PROBE_MS, null).catch((err: unknown) => {
      throw classifyNavigationError(err, this.config.navigationTimeoutMs);
    });
    if (!answer) {
      // puppeteer keeps the loader id of the frame's latest commit on `_loaderId`; it is not part of its typed API.
      const loaderId = String((slot.page.mainFrame() as unknown as { _loaderId?: unknown })._loaderId ?? '');
      const url = slot.page.url();
      return { loaderId, url, failed: url.startsWith('chrome-error:'), response: responses.get(loaderId) ?? null };
    }
    const { frame } = answer.frameTree;
    const url = frame.unreachableUrl ?? frame.url + (frame.urlFragment ?? '');
    return { loaderId: frame.loaderId, url, failed: frame.unreachableUrl !== undefined, response: responses.get(frame.loaderId) ?? null };
  }

  /** True when the page no longer shows `doc` (false when that cannot be told: the error at hand stands). */
  private async replaced(slot: Slot, doc: PageDocument): Promise<boolean> {
    return this.currentDocument(slot).then(
      (now) => now.loaderId !== doc.loaderId,
      () => false,
    );
  }

  /**
   * Takes the page's current document as the one to scan: the result's final URL and HTTP status
   * are that document's, whatever navigation `goto` last saw. Refuses one the target policy or
   * the egress proxy refused, an error page, a document that is not HTTP, or not a page to scan.
   */
  private async acceptDocument(slot: Slot, url: string, result: PageResult): Promise<PageDocument> {
    const state = this.states.get(slot.page)!;
    const doc = await this.currentDocument(slot);
    const { response } = doc;
    result.finalUrl = doc.url;
    result.httpStatus = null;
    if (state.blocked) throw state.blocked;
    // The egress proxy's own answer (refused, or the site unreachable) is not the site's document.
    const egress = response?.headers()['x-wcagai-egress'];
    if (egress) throw (egress === 'UPSTREAM_FAILED' ? undefined : this.egressRefusal(doc.url)) ?? egressError(egress, url);
    this.config.logger?.info(
      { event: 'browser.navigated', url: urlForLog(url), finalUrl: urlForLog(doc.url), httpStatus: response?.status() ?? null, ms: result.timings.navigationMs },
      'page loaded',
    );
    // The document it went to after its load could not be fetched: what shows is the browser's
    // own error page, not a page of the site.
    if (doc.failed) throw state.blocked ?? this.egressRefusal(doc.url) ?? new WcagaiError('CONNECTION_FAILED', `${url}: the page navigated after its load to ${urlForLog(doc.url)}, which could not be loaded`);
    // It sent itself to a document of its own making (about:blank, a blob:): nothing of the site
    // is left to scan, and scanning it would pass an empty page. Another try ends the same.
    if (!/^https?:/i.test(doc.url)) {
      throw new WcagaiError('UNSUPPORTED_SCHEME', `${url}: the page sent itself to ${urlForLog(doc.url)}, not an http(s) document: nothing of the site to scan`);
    }
    if (response) {
      result.httpStatus = response.status();
      checkDocument(response.status(), response.headers()['content-type'], url);
    }
    return doc;
  }

  /** Waits for the document a page navigated to after its load to finish loading (its old document is gone). */
  private async followClientRedirect(page: Page): Promise<void> {
    const { navigationTimeoutMs } = this.config;
    const state = this.states.get(page)!;
    try {
      await page.waitForFunction(() => document.readyState === 'complete', { polling: 50, timeout: navigationTimeoutMs });
    } catch (err) {
      throw state.blocked ?? this.egressRefusal(page.url()) ?? classifyNavigationError(err, navigationTimeoutMs, state.responses.size > 0);
    }
  }

  /** Settle, then axe-core, on the page's current document. */
  private async checkPage(page: Page, url: string, options: ScanOptions, result: PageResult, response: HTTPResponse | null): Promise<void> {
    const { settleQuietMs, settleMaxMs, axeTimeoutMs } = this.config;
    const state = this.states.get(page)!;
    const timings = result.timings;
    let t = performance.now();
    const settle = async () => {
      // Scripts still loading after `load` (an app's `import()`ed chunk) are waited for first; the
      // page is then given a quiet window, since it renders from them once they have run.
      const waited = await scriptsLoaded(state.scripts, settleMaxMs);
      const maxMs = Math.max(0, settleMaxMs - Math.round(performance.now() - t));
      return page.evaluate(
        (q, m, quiet) =>
          (window as unknown as { __wcagaiSettle(q: number, m: number, quiet: boolean): Promise<{ live: boolean }> })
            .__wcagaiSettle(q, m, quiet)
            .then((s) => ({
              ...s,
              contentType: document.contentType,
              // Chrome's XML tree viewer builds XHTML of its own around the source it keeps in this element.
              xhtml: document.documentElement?.namespaceURI === 'http://www.w3.org/1999/xhtml' && !document.getElementById('webkit-xml-viewer-source-xml'),
            })),
        settleQuietMs,
        maxMs,
        waited,
      );
    };
    const settled = await deadline(settle(), settleMaxMs + 2_000, 'SETTLE_TIMEOUT', `page did not settle within ${settleMaxMs + 2_000} ms`);
    timings.settleMs = Math.round(performance.now() - t);
    // The response's Content-Type may call a document HTML-like (any XML) that the browser shows as
    // something else: an XML tree or a feed as plain text, an SVG image. Scanning that would report
    // the browser's rendering of it, not a page of the site.
    // An XHTML document served as application/xml or text/xml is shown as a page (its root decides;
    // another type, a feed's, is shown as text in an HTML document of the browser's own).
    const xhtmlAsXml = settled?.xhtml === true && XML_TYPES.has(settled.contentType);
    if (settled?.contentType && !HTML_DOCUMENT_TYPES.has(settled.contentType) && !xhtmlAsXml) {
      throw new WcagaiError('NON_HTML_DOCUMENT', `${url} is shown as ${settled.contentType}, not an HTML document`);
    }
    // Pages with frames are always treated as live: their frames' code is out of the top's sight.
    // A Refresh header navigates the page later, out of the page script's sight.
    state.live = settled?.live !== false || page.frames().length > 1 || response?.headers().refresh !== undefined;

    const spec = axeRunSpec(options);
    t = performance.now();
    const raw = await deadline(page.evaluate(runAxeInPage, spec.context, spec.options), axeTimeoutMs, 'AXE_TIMEOUT', `axe-core did not finish within ${axeTimeoutMs} ms`).catch((err) => {
      throw err instanceof WcagaiError || navigatedAway(err) ? err : classifyAxeError(err);
    });
    timings.axeMs = Math.round(performance.now() - t);
    result.violations = toViolations(raw.violations);
    result.rules = { axeVersion: axeVersion(), tags: spec.tags, ran: raw.ran.sort() };
    this.config.logger?.info({ event: 'browser.analyzed', url: urlForLog(url), settleMs: timings.settleMs, axeMs: timings.axeMs, rules: raw.ran.length, violations: result.violations.length }, 'axe-core ran');
  }
}

/**
 * Rejects with BROWSER_CRASHED when the page's renderer dies (out of memory, killed). Without it a
 * crash shows as whichever deadline the scan was waiting on (settle, axe: up to AXE_TIMEOUT later),
 * since an evaluation in a crashed page is never answered.
 */
function pageCrash(page: Page, alreadyCrashed = false): { crashed: Promise<never>; off(): void } {
  let onCrash: () => void = () => undefined;
  const crashed = new Promise<never>((_, reject) => {
    onCrash = () => reject(new WcagaiError('BROWSER_CRASHED', 'the page crashed (its renderer ran out of memory or was killed)'));
    if (alreadyCrashed) onCrash();
    else page.once('error', onCrash);
  });
  crashed.catch(() => undefined);
  return { crashed, off: () => page.off('error', onCrash) };
}

/** What the browser's `document.contentType` is for a document axe-core can check as a page. */
const HTML_DOCUMENT_TYPES = new Set(['text/html', 'application/xhtml+xml']);
/** The generic XML types, under which a legacy site may serve XHTML the browser shows as a page. */
const XML_TYPES = new Set(['application/xml', 'text/xml']);

/** Resolves once no script is loading or `ms` passed: true when there was one to wait for. */
async function scriptsLoaded(scripts: ReadonlySet<HTTPRequest>, ms: number): Promise<boolean> {
  if (scripts.size === 0) return false;
  const until = performance.now() + ms;
  while (scripts.size > 0 && performance.now() < until) await new Promise((resolve) => setTimeout(resolve, 20));
  return true;
}

/** Documents a page may send itself on to after its load (meta refresh, script) before the scan gives up on it. */
const MAX_CLIENT_REDIRECTS = 3;

/** True for the error of an evaluation whose document was replaced under it (the page navigated). */
function navigatedAway(err: unknown): boolean {
  return !(err instanceof WcagaiError) && /Execution context was destroyed|Cannot find context with specified id|Inspected target navigated/i.test((err as Error)?.message ?? '');
}

/**
 * How long a parsed document may wait on frames alone, with no network event, before its load
 * counts as stalled. Long enough for a slow frame to answer; a frame slower than this is scanned
 * without its content (after one more try).
 */
export const LOAD_STALL_MS = 4_000;

/** Loads of one navigation at most when they stall (see navigate). */
const MAX_LOAD_TRIES = 3;

/** The error an egress proxy answer stands for (`x-wcagai-egress`: an error code, or UPSTREAM_FAILED). */
function egressError(code: string, url: string): WcagaiError {
  if (code === 'BLOCKED_TARGET' || code === 'DNS_FAILURE') return new WcagaiError(code, `${url}: refused by the egress proxy (${code})`);
  return new WcagaiError('CONNECTION_FAILED', `${url}: the site could not be reached`);
}

/**
 * Watches one navigation's requests. Its load has stalled when the document has parsed, every
 * request still open is a child frame's document, and no request has started, answered or ended
 * for LOAD_STALL_MS. A subresource still loading (an image that never arrives) is not a stall: such
 * a page still ends in NAVIGATION_TIMEOUT.
 */
class LoadWatch {
  private readonly open = new Set<HTTPRequest>();
  private lastEvent = performance.now();
  /** Bumped by reset and close: a watch loop of an earlier navigation sees it and ends. */
  private generation = 0;
  private readonly listeners: Array<[string, (arg: never) => void]>;

  constructor(private readonly page: Page) {
    const touch = () => (this.lastEvent = performance.now());
    const started = (req: HTTPRequest) => (this.open.add(req), touch());
    const ended = (req: HTTPRequest) => (this.open.delete(req), touch());
    this.listeners = [
      ['request', started],
      ['requestfinished', ended],
      ['requestfailed', ended],
      ['requestservedfromcache', ended],
      ['response', touch],
    ] as Array<[string, (arg: never) => void]>;
    for (const [event, fn] of this.listeners) page.on(event as 'request', fn as never);
  }

  reset(): void {
    this.generation++;
    this.open.clear();
    this.lastEvent = performance.now();
  }

  pendingFrames(): string[] {
    return [...this.open].map((r) => r.url()).slice(0, 5);
  }

  /** Resolves 'stalled' when the load stalls within `withinMs`; never resolves otherwise. */
  async stalled(withinMs: number): Promise<'stalled'> {
    const until = performance.now() + withinMs;
    const generation = this.generation;
    while (performance.now() < until && generation === this.generation) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      if (performance.now() - this.lastEvent < LOAD_STALL_MS) continue;
      if ([...this.open].some((r) => !(r.resourceType() === 'document' && r.frame() !== this.page.mainFrame()))) continue;
      const readyState = await this.page.evaluate(() => document.readyState).catch(() => null);
      if (readyState === 'interactive' && generation === this.generation) return 'stalled';
    }
    return new Promise<never>(() => undefined);
  }

  close(): void {
    for (const [event, fn] of this.listeners) this.page.off(event as 'request', fn as never);
    this.generation++;
  }
}

function classifyAxeError(err: unknown): WcagaiError {
  const message = (err as Error)?.message ?? String(err);
  if (/Target closed|Session closed|Connection closed|Protocol error/i.test(message)) return new WcagaiError('BROWSER_CRASHED', message.split('\n')[0]!);
  // The scan's own include/exclude selectors, not the page, are at fault: another try ends the same.
  if (/No elements found for include|is not a valid selector/i.test(message)) {
    return new WcagaiError('INVALID_OPTIONS', `include/exclude selectors: ${message.split('\n')[0]!.replace(/^(SyntaxError|Error): /, '')}`);
  }
  if (/Execution context was destroyed|navigat/i.test(message)) return new WcagaiError('AXE_FAILED', `page navigated away during the checks: ${message.split('\n')[0]}`);
  return new WcagaiError('AXE_FAILED', message.split('\n')[0]!, { cause: err });
}

/** Refuses error statuses and documents that are not HTML. */
function checkDocument(status: number, contentType: string | undefined, url: string): void {
  if (status === 408 || status === 429) throw new WcagaiError('HTTP_RATE_LIMITED', `${url} answered ${status}`, { details: { httpStatus: status } });
  if (status >= 500) throw new WcagaiError('HTTP_SERVER_ERROR', `${url} answered ${status}`, { details: { httpStatus: status } });
  if (status >= 400) throw new WcagaiError('HTTP_CLIENT_ERROR', `${url} answered ${status}`, { details: { httpStatus: status } });
  if (contentType && !/html|xml/i.test(contentType)) {
    throw new WcagaiError('NON_HTML_DOCUMENT', `${url} is ${contentType.split(';')[0]}, not an HTML document`);
  }
}

/** Runs in the page: axe.run, slimmed results, then the tab's sessionStorage is cleared. */
async function runAxeInPage(context: unknown, options: unknown): Promise<RawAxeResult> {
  type AxeNode = { target: unknown[]; html: string; failureSummary?: string };
  type AxeRule = { id: string; impact: string | null; tags: string[]; help: string; description: string; helpUrl: string; nodes: AxeNode[] };
  type AxeResults = Record<'violations' | 'passes' | 'incomplete' | 'inapplicable', AxeRule[]>;
  type Axe = { run(c: unknown, o: unknown): Promise<AxeResults> };
  // The preloaded instance (see preloadScript), not whatever the page's `axe` global now holds.
  const axe = (window as unknown as { __wcagaiAxe: Axe }).__wcagaiAxe;
  const r = await axe.run(context ?? document, options);
  try {
    sessionStorage.clear();
  } catch {
    // opaque origins have none
  }
  const ran = new Set<string>();
  for (const key of ['violations', 'passes', 'incomplete', 'inapplicable'] as const) for (const rule of r[key]) ran.add(rule.id);
  return {
    ran: [...ran],
    violations: r.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      tags: v.tags,
      help: v.help,
      description: v.description,
      helpUrl: v.helpUrl,
      nodes: v.nodes.map((n) => ({ target: n.target, html: n.html, failureSummary: n.failureSummary ?? '' })),
    })),
  };
}

/** Builds and warms a scan engine. */
export function createScanner(config: ScannerConfig): Promise<Scanner> {
  return ScanEngine.create(config);
}
