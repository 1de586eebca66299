/** Plain-text views of the dead-letter queue for `wcagai dlq` on a terminal. Pure functions. */
import type { DlqBulkRetryResult, DlqEntry, DlqStats } from '../domain/dlq.js';
import { clean } from '../domain/text.js';

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

const when = (iso: string) => iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z');

/** `wcagai dlq list`: one line per entry, newest first. */
export function dlqListText(entries: readonly DlqEntry[], nextCursor: string | null, filtered = false): string {
  if (entries.length === 0 && nextCursor) return `no match among the entries looked at; older ones remain: --cursor ${nextCursor}\n`;
  if (entries.length === 0) return filtered ? 'no entry of the dead-letter queue matches this filter\n' : 'the dead-letter queue is empty\n';
  const rows = entries.map((e) => [e.id, when(e.lastFailedAt), e.code, String(e.attemptsMade), e.status, e.request.url]);
  const more = nextCursor ? `\nmore entries: --cursor ${nextCursor}` : '';
  return `${table(['ID', 'FAILED AT', 'CODE', 'ATTEMPTS', 'STATUS', 'URL'], rows)}${more}\n`;
}

/** `wcagai dlq show`: every field, attempts and retries as lists. */
export function dlqEntryText(e: DlqEntry): string {
  const lines = [
    `id            ${e.id}`,
    `status        ${e.status}`,
    `url           ${e.request.url}`,
    `host          ${e.host}`,
    `code          ${e.code}${e.retryable ? ' (retryable)' : ' (permanent)'}`,
    // Scan errors can quote what a page or its server sent: printed on a terminal, without control characters.
    `message       ${clean(e.message)}`,
    `scan          ${e.jobId}`,
    `priority      ${e.request.priority}`,
    `options       ${JSON.stringify(e.request.options)}`,
    `first failed  ${when(e.firstFailedAt)}`,
    `last failed   ${when(e.lastFailedAt)}`,
    ...(e.requestId ? [`request id    ${e.requestId}`] : []),
    ...(e.workerId ? [`worker        ${e.workerId}`] : []),
    `attempts      ${e.attemptsMade}`,
    ...e.attempts.map((a) => `  ${when(a.at)}  ${a.jobId} #${a.attempt}  ${a.code}: ${clean(a.message)}`),
    `retries       ${e.retries.length}`,
    ...e.retries.map((r) => `  ${when(r.at)}  ${r.jobId ?? '(queueing)'}  ${r.outcome}`),
  ];
  return `${lines.join('\n')}\n`;
}

function counts(title: string, values: Record<string, number>): string {
  const rows = Object.entries(values).map(([k, n]) => [k, String(n)]);
  return rows.length ? table([title, 'ENTRIES'], rows) : `${title}\n(none)`;
}

/** `wcagai dlq stats`: the failure patterns. */
export function dlqStatsText(s: DlqStats): string {
  const head = `${s.total} entries${s.oldest ? `, oldest ${when(s.oldest)}, newest ${when(s.newest ?? s.oldest)}` : ''}`;
  return `${[head, counts('CODE', s.byCode), counts('HOST', s.byHost), counts('DAY', s.byDay)].join('\n\n')}\n`;
}

/** `wcagai dlq retry --all|--code|--host`: what was queued and what was not. */
export function dlqBulkText(r: DlqBulkRetryResult): string {
  const lines = [`retried ${r.retried.length} of ${r.matched} matching entries`];
  for (const x of r.retried) lines.push(`  ${x.id} -> ${x.jobId}`);
  if (r.skipped.length) lines.push(`skipped ${r.skipped.length}:`, ...r.skipped.map((x) => `  ${x.id}: ${x.reason}`));
  if (r.stoppedBy) lines.push(`stopped early: ${r.stoppedBy}; the rest stay in the DLQ`);
  return `${lines.join('\n')}\n`;
}
