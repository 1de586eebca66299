import { constants, readdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { Browser } from 'puppeteer-core';
import { canAccess } from '../config/files.js';
import { WcagaiError } from '../errors/catalogue.js';

const SYSTEM_CANDIDATES = [
  '/usr/bin/chromium',
  '/usr/bin/chromium-browser',
  '/usr/bin/google-chrome',
  '/usr/bin/google-chrome-stable',
  '/opt/google/chrome/chrome',
  '/snap/bin/chromium',
  '/Applications/Google Chrome.app/Contents/MacOS/Google Chrome',
  '/Applications/Chromium.app/Contents/MacOS/Chromium',
];
const PATH_NAMES = ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable', 'chrome'];

export const BROWSER_NOT_FOUND_HELP =
  'no Chromium or Chrome found. Fix it one of three ways: ' +
  '(1) set PUPPETEER_EXECUTABLE_PATH or CHROMIUM_PATH to a Chrome/Chromium binary; ' +
  '(2) install one on the system (Debian/Ubuntu: apt-get install -y chromium); ' +
  "(3) install puppeteer's managed browser: npx @puppeteer/browsers install chrome-headless-shell@stable";

const executable = (path: string) => canAccess(path, constants.X_OK);

/** The newest browser installed by `@puppeteer/browsers` in puppeteer's cache, if any. */
async function managedBrowser(cacheDir: string): Promise<string | null> {
  try {
    const { getInstalledBrowsers } = await import('@puppeteer/browsers');
    const installed = await getInstalledBrowsers({ cacheDir });
    const preferred = installed.sort((a, b) => (a.browser === 'chrome-headless-shell' ? -1 : 0) - (b.browser === 'chrome-headless-shell' ? -1 : 0));
    return preferred.map((b) => b.executablePath).find(executable) ?? null;
  } catch {
    return null;
  }
}

/**
 * Finds the browser to drive: PUPPETEER_EXECUTABLE_PATH or CHROMIUM_PATH, else a system
 * Chrome/Chromium, else puppeteer's managed download. Throws BROWSER_NOT_FOUND naming the fixes.
 */
export async function findBrowser(env: Record<string, string | undefined>): Promise<string> {
  for (const name of ['PUPPETEER_EXECUTABLE_PATH', 'CHROMIUM_PATH'] as const) {
    const path = env[name];
    if (!path) continue;
    if (executable(path)) return path;
    throw new WcagaiError('BROWSER_NOT_FOUND', `${name}=${path} is not an executable file; ${BROWSER_NOT_FOUND_HELP}`);
  }
  for (const path of SYSTEM_CANDIDATES) if (executable(path)) return path;
  for (const dir of (env.PATH ?? '').split(delimiter).filter(Boolean)) {
    for (const name of PATH_NAMES) if (executable(join(dir, name))) return join(dir, name);
  }
  const managed = await managedBrowser(env.PUPPETEER_CACHE_DIR ?? join(homedir(), '.cache', 'puppeteer'));
  if (managed) return managed;
  throw new WcagaiError('BROWSER_NOT_FOUND', BROWSER_NOT_FOUND_HELP);
}

/** Flags that keep Chromium quiet on a closed network and stable in containers. */
export function chromiumArgs(extra: readonly string[] = []): string[] {
  const args = [
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
    '--disable-dev-shm-usage',
    '--disable-gpu',
    '--disable-quic',
    '--disable-extensions',
    '--disable-default-apps',
    '--disable-domain-reliability',
    '--disable-breakpad',
    '--mute-audio',
    '--no-default-browser-check',
    '--disable-features=Translate,MediaRouter,OptimizationHints,AutofillServerCommunication,InterestFeedContentSuggestions',
  ];
  if (typeof process.getuid === 'function' && process.getuid() === 0) args.push('--no-sandbox');
  return [...args, ...extra];
}

export interface LaunchOptions {
  executablePath: string;
  extraArgs?: readonly string[];
  timeoutMs?: number;
}

/** Launches Chromium over a pipe, so it exits with this process even after SIGKILL. */
export async function launchBrowser(options: LaunchOptions): Promise<Browser> {
  const puppeteer = await import('puppeteer-core');
  let browser: Browser;
  try {
    browser = await puppeteer.launch({
      executablePath: options.executablePath,
      headless: true,
      pipe: true,
      args: chromiumArgs(options.extraArgs),
      // puppeteer turns Chromium's popup blocker off; on, a window a page opens on its own (no
      // click: a scan makes none) is never created, so it cannot load a document and write storage
      // of an origin the scan does not know of before it could be closed.
      ignoreDefaultArgs: ['--disable-popup-blocking'],
      timeout: options.timeoutMs ?? 30_000,
      handleSIGINT: false,
      handleSIGTERM: false,
      handleSIGHUP: false,
      protocolTimeout: 120_000,
      defaultViewport: { width: 1280, height: 1024 },
    });
  } catch (err) {
    throw new WcagaiError('BROWSER_LAUNCH_FAILED', `could not start ${options.executablePath}: ${(err as Error).message}`, { cause: err });
  }
  // puppeteer drops its listeners from the protocol pipes when it closes the browser: a browser
  // killed after that (one that stopped answering, see closeBrowser) can reset a pipe it never
  // read, and an error event nobody listens to would take the whole process down.
  for (const stream of browser.process()?.stdio ?? []) stream?.on('error', () => undefined);
  return browser;
}

/** Closes a browser with a deadline, then kills its whole process group so no renderer survives. */
export async function closeBrowser(browser: Browser, deadlineMs = 5_000): Promise<void> {
  const pid = browser.process()?.pid;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    browser.close().catch(() => undefined),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, deadlineMs);
    }),
  ]);
  clearTimeout(timer);
  if (pid) killProcessGroup(pid);
}

/** SIGKILLs a process group (Chromium is started detached, as its group's leader). */
export function killProcessGroup(pid: number): void {
  for (const target of [-pid, pid]) {
    try {
      process.kill(target, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/**
 * Resident memory of a process and all its descendants, in bytes (Linux /proc; 0 elsewhere).
 *
 * Counts each process's proportional set size (PSS, from /proc/PID/smaps_rollup), so pages shared
 * between processes are counted once in total. Summing plain RSS would count Chromium's shared
 * library and shared-memory pages once per process: a warm browser with two pages reads ~1.3 GiB
 * that way for ~0.4 GiB really used, and the pool recycled the browser every few dozen scans.
 * Falls back to RSS for a process whose smaps_rollup cannot be read.
 */
export function processTreeRss(rootPid: number): number {
  let entries: string[];
  try {
    entries = readdirSync('/proc').filter((e) => /^\d+$/.test(e));
  } catch {
    return 0;
  }
  const children = new Map<number, number[]>();
  const rss = new Map<number, number>();
  const pageSize = 4096;
  for (const entry of entries) {
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Fields after the parenthesised command name: state ppid ... (rss is field 24 overall).
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const pid = Number(entry);
      const ppid = Number(rest[1]);
      rss.set(pid, Number(rest[21]) * pageSize);
      const list = children.get(ppid) ?? [];
      list.push(pid);
      children.set(ppid, list);
    } catch {
      // process exited while reading
    }
  }
  let total = 0;
  const stack = [rootPid];
  const seen = new Set<number>();
  while (stack.length) {
    const pid = stack.pop()!;
    if (seen.has(pid)) continue;
    seen.add(pid);
    total += proportionalSetSize(pid) ?? rss.get(pid) ?? 0;
    stack.push(...(children.get(pid) ?? []));
  }
  return total;
}

/** A process's PSS in bytes, or undefined when /proc/PID/smaps_rollup is unavailable. */
function proportionalSetSize(pid: number): number | undefined {
  try {
    const match = /^Pss:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}
