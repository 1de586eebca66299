/** What the scan engine tests share: a configuration for a loaded CI machine, pages and checks. */
import type { Logger } from 'pino';
import { expect } from 'vitest';
import type { PageResult } from '../../src/domain/scan.js';
import { DEFAULT_SCANNER_CONFIG, type ScannerConfig } from '../../src/scanner/engine.js';
import { defaultResolver } from '../../src/scanner/target-guard.js';

export const ENGINE_TEST_CONFIG: ScannerConfig = {
  ...DEFAULT_SCANNER_CONFIG,
  concurrency: 1,
  // Generous for a loaded CI machine: only the deadline tests wait for them.
  navigationTimeoutMs: 8_000,
  scanTimeoutMs: 16_000,
  settleMaxMs: 3_000,
  axeTimeoutMs: 10_000,
  // The isolation tests prove a slot is cleaned and reused: a starved machine must not make them
  // see the safety net (discarding the slot) instead.
  cleanupTimeoutMs: 20_000,
  policy: { allowPrivate: true, allowedHosts: [], resolve: defaultResolver },
};

export const GIF = Buffer.from('R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==', 'base64');
export const GIF_URI = `data:image/gif;base64,${GIF.toString('base64')}`;
/** An image without a text alternative: image-alt, every time. */
export const NO_ALT_IMG = `<img src="${GIF_URI}" width="20" height="20">`;

/** A logger that keeps what the engine logs (pino-style: fields object first): event names, and each line's fields. */
export function recordingLogger(): { logger: Logger; events: string[]; records: Array<Record<string, unknown>> } {
  const events: string[] = [];
  const records: Array<Record<string, unknown>> = [];
  const record = (fields: unknown): void => {
    const event = (fields as { event?: unknown } | null)?.event;
    if (typeof event !== 'string') return;
    events.push(event);
    records.push(fields as Record<string, unknown>);
  };
  const logger = { trace: record, debug: record, info: record, warn: record, error: record, fatal: record, child: () => logger };
  return { logger: logger as unknown as Logger, events, records };
}

/** The result, once it is known to be a scanned page (its error shown otherwise). */
export function ok(result: PageResult): PageResult {
  expect(result.error, `${result.url}: ${JSON.stringify(result.error)}`).toBeUndefined();
  expect(result.status).toBe('ok');
  return result;
}

export function ruleIds(result: PageResult): string[] {
  return result.violations.map((v) => v.id).sort();
}
