import { describe, expect, it } from 'vitest';
import { DEFAULT_SCAN_OPTIONS } from '../../src/domain/scan.js';
import { reportOf } from '../../src/http/routes/scans.js';
import type { ScanView } from '../../src/queue/job.js';
import { render } from '../../src/reporters/index.js';

const stalled: ScanView = {
  id: 'scan_stalled1',
  status: 'failed',
  url: 'https://example.com/app',
  options: DEFAULT_SCAN_OPTIONS,
  attempts: 3,
  createdAt: '2026-11-01T10:00:00.000Z',
  startedAt: '2026-11-01T10:00:01.000Z',
  finishedAt: '2026-11-01T10:05:00.000Z',
  cached: false,
  error: { code: 'STALLED', message: 'job stalled more than allowable limit', retryable: true },
};

describe('reportOf', () => {
  it('reports a scan that failed without a result as its page error, which no reporter renders as a pass', () => {
    const report = reportOf(stalled);
    expect(report.summary).toMatchObject({ pages: 1, pagesFailed: 1 });
    expect(report.pages[0]).toMatchObject({ url: 'https://example.com/app', status: 'error', error: { code: 'STALLED' } });
    expect(render(report, 'junit')).toMatch(/<testsuites [^>]*errors="1"/);
    const sarif = JSON.parse(render(report, 'sarif'));
    expect(sarif.runs[0].invocations[0]).toMatchObject({ executionSuccessful: false, toolExecutionNotifications: [{ descriptor: { id: 'STALLED' } }] });
  });
});
