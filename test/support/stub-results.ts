import type { PageResult } from '../../src/domain/scan.js';
import type { Scanner } from '../../src/scanner/types.js';

/**
 * A page result as the engine returns it, for the stub scanners of tests that run the queue
 * without Chromium: a clean page, or with `error` a failed one.
 */
export function stubResult(url: string, fields: { httpStatus?: number; error?: PageResult['error'] } = {}): PageResult {
  return {
    url,
    finalUrl: url,
    status: fields.error ? 'error' : 'ok',
    httpStatus: fields.httpStatus ?? 200,
    ...(fields.error ? { error: fields.error } : {}),
    timings: { navigationMs: 1, settleMs: 0, axeMs: 0, totalMs: 1 },
    rules: { axeVersion: 'stub', tags: [], ran: [] },
    violations: [],
  };
}

/** A stub scanner whose scans wait until the test answers them; `calls` lists the pages in the order scanned, `held()` how many wait. */
export function heldScanner(): Scanner & { calls: string[]; held(): number; answer(result: (url: string) => PageResult): void } {
  const waiting: Array<(result: (url: string) => PageResult) => void> = [];
  const scanner = {
    calls: [] as string[],
    held: () => waiting.length,
    async scan(url: string): Promise<PageResult> {
      scanner.calls.push(url);
      const make = await new Promise<(url: string) => PageResult>((resolve) => waiting.push(resolve));
      return make(url);
    },
    answer(result: (url: string) => PageResult) {
      for (const resolve of waiting.splice(0)) resolve(result);
    },
    stats: () => ({ concurrency: 1, active: waiting.length, scansDone: scanner.calls.length, browserRestarts: 0, browserPid: 1 }),
    close: async () => undefined,
  };
  return scanner;
}

/** A stub scanner answering every page at once with `result` (a clean page by default). */
export function stubScanner(result: (url: string) => PageResult = (url) => stubResult(url)): Scanner {
  return {
    scan: async (url) => result(url),
    stats: () => ({ concurrency: 1, active: 0, scansDone: 0, browserRestarts: 0, browserPid: 1 }),
    close: async () => undefined,
  };
}
