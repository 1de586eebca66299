import type { PageResult } from '../../src/domain/scan.js';

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
