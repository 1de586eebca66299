import type { Browser, BrowserContext, CDPSession, Page } from 'puppeteer-core';
import { WcagaiError } from '../errors/catalogue.js';
import { closeBrowser, launchBrowser, processTreeRss } from './browser.js';

/**
 * How slots map to browser contexts. `shared`: every page of a browser lives in one context, and
 * a scan's state is cleared after it (the engine's job); a context that may hold state nobody
 * cleared is retired. `per-slot`: each page has a context of its own, so scans running at the same
 * time never share cookies or storage either; on the GOV.UK corpus this costs about a fifth of the
 * throughput (each navigation about 25 ms more).
 */
export type ContextMode = 'shared' | 'per-slot';

/** A browser context and how many open pages live in it. */
interface ContextHolder {
  context: BrowserContext;
  pages: number;
  /** No new scan starts in it: it is closed when its last page is. */
  retired: boolean;
}

interface SharedContext {
  holder: Promise<ContextHolder>;
  generation: number;
  /** The holder once open. */
  current: ContextHolder | null;
}

/** One warm page: the unit a scan borrows. */
export interface Slot {
  context: BrowserContext;
  holder: ContextHolder;
  page: Page;
  session: CDPSession;
  /** Browser generation the slot belongs to; a crash or recycle starts a new one. */
  generation: number;
}

export interface PoolEvents {
  onLaunch?(info: { browserPid: number | null; generation: number; reason: string }): void;
  onDisconnect?(info: { browserPid: number | null; generation: number }): void;
  /** The browser stopped answering and is being killed (then relaunched as after a crash). */
  onHung?(info: { browserPid: number | null; generation: number }): void;
}

export interface PoolOptions {
  concurrency: number;
  /** Default `shared`. */
  contextMode?: ContextMode;
  executablePath: string;
  extraArgs?: readonly string[];
  /** Restart the browser after this many scans (0 = never). */
  maxScansPerBrowser: number;
  /** Restart the browser when its process tree's RSS passes this (0 = never). */
  maxBrowserRssBytes: number;
  /** Prepares a fresh page once (preload scripts, interception); runs before it is first lent. */
  setupPage(page: Page, session: CDPSession): Promise<void>;
  events?: PoolEvents;
}

type Waiter = () => void;

const RSS_CHECK_EVERY = 25;

/**
 * How long the browser may take to say its version after a scan failed uncleanly. A browser
 * process that answers nothing (hung, stopped) would otherwise keep its connection open: every
 * later page would wait for the protocol timeout and fail, and nothing would ever relaunch it.
 */
const BROWSER_PROBE_MS = 5_000;

/**
 * One Chromium per process and `concurrency` warm pages, in one shared browser context or each in
 * its own (see ContextMode). Pages are reused across scans; a page reported unusable is thrown
 * away, and in a shared context it takes its context with it: the scan may have left state behind,
 * so later scans start in a fresh context while those still running finish in the old one. The
 * browser is relaunched after a crash and recycled by count or memory.
 */
export class BrowserPool {
  private browser: Browser | null = null;
  private launching: Promise<Browser> | null = null;
  private generation = 0;
  private freeSlots: Slot[] = [];
  /** The context new pages open in (shared mode), for the current browser generation. */
  private shared: SharedContext | null = null;
  private contextsRetired = 0;
  private active = 0;
  private waiters: Waiter[] = [];
  private recycleReason: string | null = null;
  private restarting: Promise<void> | null = null;
  private scansOnBrowser = 0;
  private closed = false;
  private launches = 0;
  private stats = { scansDone: 0 };
  private probing: Promise<void> | null = null;

  constructor(private readonly options: PoolOptions) {}

  /** Starts the browser and opens every page now, so the first scans do not pay for it. */
  async warm(): Promise<void> {
    const leases = await Promise.all(Array.from({ length: this.options.concurrency }, () => this.acquire()));
    for (const slot of leases) this.release(slot, true, false);
  }

  /** Runs `fn` with a slot; `fn` reports whether the page is still clean and reusable. */
  async use<T>(fn: (slot: Slot) => Promise<{ value: T; reusable: boolean }>): Promise<T> {
    const slot = await this.acquire();
    let reusable = false;
    try {
      const out = await fn(slot);
      reusable = out.reusable;
      return out.value;
    } finally {
      this.release(slot, reusable);
    }
  }

  /** True when the slot's browser died or was replaced after it was lent. */
  isStale(slot: Slot): boolean {
    return slot.generation !== this.generation || !this.browser?.connected;
  }

  snapshot() {
    return {
      concurrency: this.options.concurrency,
      active: this.active,
      scansDone: this.stats.scansDone,
      browserRestarts: Math.max(0, this.launches - 1),
      contextsRetired: this.contextsRetired,
      browserPid: this.browser?.process()?.pid ?? null,
      browserConnected: this.browser?.connected === true,
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    const browser = this.browser ?? (await this.launching?.catch(() => null)) ?? null;
    this.browser = null;
    this.freeSlots = [];
    for (const wake of this.waiters.splice(0)) wake();
    if (browser) await closeBrowser(browser);
  }

  private async acquire(): Promise<Slot> {
    for (;;) {
      if (this.closed) throw new WcagaiError('SCAN_ABORTED', 'browser pool is closed');
      if (this.active < this.options.concurrency && this.recycleReason === null) break;
      if (this.recycleReason !== null && this.active === 0) {
        await this.restart(this.recycleReason);
        continue;
      }
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    this.active++;
    try {
      // A browser being asked whether it still answers lends no page until it has.
      if (this.probing) await this.probing;
      const free = this.freeSlots.pop();
      if (free && !this.isStale(free)) return free;
      return await this.openSlot();
    } catch (err) {
      this.active--;
      this.wakeOne();
      throw err;
    }
  }

  private release(slot: Slot, reusable: boolean, counted = true): void {
    this.active--;
    if (counted) {
      this.stats.scansDone++;
      this.scansOnBrowser++;
    }
    if (reusable && !this.isStale(slot) && !this.closed && !slot.holder.retired) {
      this.freeSlots.push(slot);
    } else {
      if (!reusable) {
        this.retire(slot.holder);
        // A scan that timed out may have waited on a browser that no longer answers.
        if (!this.isStale(slot)) this.probeBrowser();
      }
      this.discard(slot);
    }
    this.checkRecycle();
    if (this.recycleReason !== null) {
      for (const wake of this.waiters.splice(0)) wake();
    } else {
      this.wakeOne();
    }
  }

  /** No new scan starts in this context; its idle pages are closed now, busy ones when released. */
  private retire(holder: ContextHolder): void {
    if (holder.retired) return;
    holder.retired = true;
    if (this.options.contextMode !== 'per-slot') this.contextsRetired++;
    if (this.shared?.current === holder) this.shared = null;
    const idle = this.freeSlots.filter((s) => s.holder === holder);
    this.freeSlots = this.freeSlots.filter((s) => s.holder !== holder);
    for (const slot of idle) this.discard(slot);
  }

  /** Closes a slot's page, and its context once no page is left in it (or it was the slot's own). */
  private discard(slot: Slot): void {
    this.closePage(slot.holder, slot.page, this.isStale(slot));
  }

  private closePage(holder: ContextHolder, page: Page | undefined, stale: boolean): void {
    holder.pages--;
    if (holder.pages <= 0 && (holder.retired || stale || this.options.contextMode === 'per-slot')) {
      void holder.context.close().catch(() => undefined);
    } else {
      void page?.close().catch(() => undefined);
    }
  }

  /** Asks the browser for its version; one that does not answer in time is killed, and so relaunched as after a crash. */
  private probeBrowser(): void {
    const browser = this.browser;
    if (!browser || this.probing || this.closed) return;
    const generation = this.generation;
    this.probing = (async () => {
      let timer: NodeJS.Timeout | undefined;
      const answered = await Promise.race([
        browser.version().then(
          () => true,
          () => true, // gone, not hung: the disconnect is handled as a crash
        ),
        new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), BROWSER_PROBE_MS))),
      ]);
      clearTimeout(timer);
      if (answered || this.closed || this.browser !== browser || this.generation !== generation) return;
      this.options.events?.onHung?.({ browserPid: browser.process()?.pid ?? null, generation });
      // As after a crash: its lent slots go stale, its idle pages are dropped, and a new browser
      // starts now (its own disconnect, which may come later, is then not taken for another crash).
      this.generation++;
      this.freeSlots = [];
      this.browser = null;
      await closeBrowser(browser, 1_000);
      if (!this.closed) void this.ensureBrowser('relaunch after hang').catch(() => undefined);
    })().finally(() => {
      this.probing = null;
    });
  }

  private wakeOne(): void {
    this.waiters.shift()?.();
  }

  private checkRecycle(): void {
    if (this.recycleReason !== null || !this.browser) return;
    const { maxScansPerBrowser, maxBrowserRssBytes } = this.options;
    if (maxScansPerBrowser > 0 && this.scansOnBrowser >= maxScansPerBrowser) {
      this.recycleReason = `recycle after ${this.scansOnBrowser} scans`;
    } else if (maxBrowserRssBytes > 0 && this.scansOnBrowser > 0 && this.scansOnBrowser % RSS_CHECK_EVERY === 0) {
      // Not at 0: warm-up releases count no scan, and recycling then would throw the warm pages away.
      const pid = this.browser.process()?.pid;
      const rss = pid ? processTreeRss(pid) : 0;
      if (rss > maxBrowserRssBytes) this.recycleReason = `recycle at ${Math.round(rss / 2 ** 20)} MiB`;
    }
  }

  private restart(reason: string): Promise<void> {
    this.restarting ??= (async () => {
      const old = this.browser;
      this.browser = null;
      this.freeSlots = [];
      this.generation++;
      if (old) await closeBrowser(old);
      this.recycleReason = null;
      await this.ensureBrowser(reason);
    })().finally(() => {
      this.restarting = null;
    });
    return this.restarting;
  }

  private async ensureBrowser(reason = 'start'): Promise<Browser> {
    if (this.browser?.connected) return this.browser;
    this.launching ??= (async () => {
      if (this.browser) {
        // Disconnected: make sure nothing of it survives before starting the next one.
        await closeBrowser(this.browser, 1_000);
        this.browser = null;
      }
      const browser = await launchBrowser({ executablePath: this.options.executablePath, extraArgs: this.options.extraArgs ?? [] });
      this.launches++;
      this.generation++;
      this.scansOnBrowser = 0;
      this.freeSlots = [];
      this.browser = browser;
      const generation = this.generation;
      const pid = browser.process()?.pid ?? null;
      browser.on('disconnected', () => {
        if (this.generation === generation && this.browser === browser && !this.closed) {
          this.generation++;
          this.freeSlots = [];
          this.options.events?.onDisconnect?.({ browserPid: pid, generation });
          // Relaunched now, not at the next scan: until then the process is not ready (/health/ready
          // answers 503), and an idle one would stay so. A launch that fails is tried again by the next scan.
          void this.ensureBrowser('relaunch after crash').catch(() => undefined);
        }
      });
      this.options.events?.onLaunch?.({ browserPid: pid, generation, reason });
      if (this.closed) {
        await closeBrowser(browser);
        throw new WcagaiError('SCAN_ABORTED', 'browser pool is closed');
      }
      return browser;
    })().finally(() => {
      this.launching = null;
    });
    return this.launching;
  }

  private async openSlot(): Promise<Slot> {
    const browser = await this.ensureBrowser(this.stats.scansDone > 0 ? 'relaunch after crash' : 'start');
    const generation = this.generation;
    for (;;) {
      // The browser was replaced while this page was opening: open it in the new one instead.
      if (generation !== this.generation) return this.openSlot();
      const holder = await this.contextFor(browser, generation);
      if (holder.retired) continue;
      holder.pages++;
      const { context } = holder;
      let page: Page | undefined;
      try {
        page = await context.newPage();
        const session = await page.createCDPSession();
        await this.options.setupPage(page, session);
        const slot: Slot = { context, holder, page, session, generation };
        // Retired while the page opened (another scan in it failed): it may hold that scan's state.
        if (!holder.retired) return slot;
        this.discard(slot);
      } catch (err) {
        // A page never lent holds no scan's state: its context is not retired for it.
        this.closePage(holder, page, generation !== this.generation);
        throw err;
      }
    }
  }

  /** The context a new page opens in: its own (per-slot), or the generation's current shared one. */
  private async contextFor(browser: Browser, generation: number): Promise<ContextHolder> {
    const open = async (): Promise<ContextHolder> => ({ context: await browser.createBrowserContext(), pages: 0, retired: false });
    if (this.options.contextMode === 'per-slot') return open();
    if (this.shared?.generation !== generation) {
      const holder = open();
      const shared: SharedContext = { holder, generation, current: null };
      this.shared = shared;
      holder.then(
        (h) => (shared.current = h),
        // A context that failed to open is not kept: the next page tries again.
        () => this.shared === shared && (this.shared = null),
      );
    }
    return this.shared.holder;
  }
}
