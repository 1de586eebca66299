import type { PageResult, Report, ScanOptions } from '../domain/scan.js';
import { summarize } from '../reporters/summary.js';
import { axeVersion } from './page-script.js';
import type { Scanner } from './types.js';

export interface BatchProgress {
  done: number;
  total: number;
  failed: number;
  url: string;
}

export interface ScanBatchOptions {
  concurrency: number;
  tool: { name: string; version: string };
  onProgress?(progress: BatchProgress): void;
  signal?: AbortSignal;
  /** Extra request headers for every page, sent to its own origin only (see ScanRequestOptions). */
  headers?: Readonly<Record<string, string>>;
}

/** Scans every URL through the engine, `concurrency` at a time, into one report in input order. */
export async function scanBatch(scanner: Scanner, urls: readonly string[], options: ScanOptions, batch: ScanBatchOptions): Promise<Report> {
  const startedAt = new Date().toISOString();
  const pages: PageResult[] = new Array(urls.length);
  let next = 0;
  let done = 0;
  let failed = 0;
  const workers = Array.from({ length: Math.max(1, Math.min(batch.concurrency, urls.length)) }, async () => {
    while (next < urls.length) {
      const i = next++;
      const url = urls[i]!;
      const page = await scanner.scan(url, options, { ...(batch.signal ? { signal: batch.signal } : {}), ...(batch.headers ? { headers: batch.headers } : {}) });
      pages[i] = page;
      done++;
      if (page.status === 'error') failed++;
      batch.onProgress?.({ done, total: urls.length, failed, url });
    }
  });
  await Promise.all(workers);
  return {
    tool: batch.tool,
    axeVersion: axeVersion(),
    startedAt,
    finishedAt: new Date().toISOString(),
    options,
    summary: summarize(pages),
    pages,
  };
}
