import { describe, expect, it } from 'vitest';
import type { DlqEntry } from '../../src/domain/dlq.js';
import { DEFAULT_SCAN_OPTIONS } from '../../src/domain/scan.js';
import { dlqEntryText, dlqListText } from '../../src/reporters/dlq.js';

const at = '2026-11-01T10:00:00.000Z';
const entry: DlqEntry = {
  id: 'dlq_text0000001',
  jobId: 'scan_text1',
  request: { url: 'https://shop.example/', options: DEFAULT_SCAN_OPTIONS, priority: 'normal' },
  host: 'shop.example',
  code: 'HTTP_SERVER_ERROR',
  // What a page or its server sent, quoted in the error: an escape sequence that would retitle the terminal.
  message: 'https://shop.example/ answered 500: \u001b]0;PWNED\u0007\u001b[2Jdown\nnext',
  retryable: true,
  attemptsMade: 1,
  attempts: [{ attempt: 1, jobId: 'scan_text1', code: 'HTTP_SERVER_ERROR', message: 'bad \u001b[31mred\u001b[0m', at }],
  firstFailedAt: at,
  lastFailedAt: at,
  retries: [],
  status: 'dead',
};

describe('DLQ text for a terminal', () => {
  it('prints messages without control characters, so a quoted page cannot drive the terminal', () => {
    const text = dlqEntryText(entry) + dlqListText([entry], null);
    expect(text).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/);
    expect(text).toContain('answered 500: ]0;PWNED[2Jdown next');
    expect(text).toContain('HTTP_SERVER_ERROR: bad [31mred[0m');
  });
});

describe('an empty DLQ list', () => {
  it('says the DLQ is empty, or that nothing matches the filter when one was given', () => {
    expect(dlqListText([], null)).toBe('the dead-letter queue is empty\n');
    expect(dlqListText([], null, true)).toBe('no entry of the dead-letter queue matches this filter\n');
  });
});
