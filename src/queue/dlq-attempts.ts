import type { DlqAttempt } from '../domain/dlq.js';

/**
 * Each failed attempt is written to the job's BullMQ log as one line with this prefix, so the
 * DLQ entry can list every attempt's error (BullMQ keeps only the last failedReason). The log
 * lives and dies with the job; other log lines are left alone.
 */
const PREFIX = 'wcagai.attempt ';

/** The log line of one failed attempt. */
export function attemptLogLine(attempt: Omit<DlqAttempt, 'jobId'>): string {
  return `${PREFIX}${JSON.stringify(attempt)}`;
}

/** The attempts recorded in a job's log lines, in attempt order, one per attempt number. */
export function attemptsFromLog(jobId: string, lines: readonly string[]): DlqAttempt[] {
  const byNumber = new Map<number, DlqAttempt>();
  for (const line of lines) {
    if (!line.startsWith(PREFIX)) continue;
    try {
      const a = JSON.parse(line.slice(PREFIX.length)) as Partial<DlqAttempt>;
      if (typeof a.attempt !== 'number' || typeof a.code !== 'string') continue;
      byNumber.set(a.attempt, { attempt: a.attempt, jobId, code: a.code, message: String(a.message ?? ''), at: String(a.at ?? '') });
    } catch {
      // a line we did not write
    }
  }
  return [...byNumber.values()].sort((a, b) => a.attempt - b.attempt);
}
