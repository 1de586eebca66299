import { createInterface } from 'node:readline/promises';
import { openDlq } from '../app/dlq.js';
import { hasDurationUnit, parseDuration } from '../config/schema.js';
import { describeDlqFilter, hostFilterOf, dlqListRow, type DlqFilter, type DlqOperations } from '../domain/dlq.js';
import { WcagaiError } from '../errors/catalogue.js';
import { dlqBulkText, dlqEntryText, dlqListText, dlqStatsText } from '../reporters/dlq.js';

/** Where the DLQ is: a server (--url, --token) or, by default, Redis itself. */
export interface DlqTargetFlags {
  url?: string;
  token?: string;
  json?: boolean;
}

/** Runs `fn` on the DLQ; its exit code is `fn`'s (0 when it returns none). */
async function withDlq(flags: DlqTargetFlags, fn: (dlq: DlqOperations) => Promise<number | void>): Promise<number> {
  const { dlq, close } = await openDlq({ ...(flags.url ? { url: flags.url } : {}), ...(flags.token ? { token: flags.token } : {}) });
  try {
    return (await fn(dlq)) ?? 0;
  } finally {
    await close();
  }
}

const print = (text: string) => process.stdout.write(text);
const printJson = (value: unknown) => print(`${JSON.stringify(value, null, 2)}\n`);

/** `wcagai dlq list`: newest first; JSON rows carry id, url, code, failedAt. */
export function runDlqList(flags: DlqTargetFlags & { code?: string; host?: string; limit?: number; cursor?: string }): Promise<number> {
  return withDlq(flags, async (dlq) => {
    const page = await dlq.list({ limit: flags.limit ?? 20, ...(flags.cursor ? { cursor: flags.cursor } : {}), ...(flags.code ? { code: flags.code } : {}), ...(flags.host ? { host: flags.host } : {}) });
    if (flags.json) printJson(page.entries.map(dlqListRow));
    else if (page.entries.length === 0 && !page.nextCursor && flags.cursor && !flags.code && !flags.host) print('no more entries after this cursor\n');
    else print(dlqListText(page.entries, page.nextCursor, Boolean(flags.code || flags.host)));
  });
}

/** `wcagai dlq show <id>`. */
export function runDlqShow(id: string, flags: DlqTargetFlags): Promise<number> {
  return withDlq(flags, async (dlq) => {
    const entry = await dlq.get(id);
    if (flags.json) printJson(entry);
    else print(dlqEntryText(entry));
  });
}

/** `wcagai dlq stats`: { total, byCode, byHost, byDay, oldest, newest }. */
export function runDlqStats(flags: DlqTargetFlags): Promise<number> {
  return withDlq(flags, async (dlq) => {
    const stats = await dlq.stats();
    if (flags.json) printJson(stats);
    else print(dlqStatsText(stats));
  });
}

async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
  } finally {
    rl.close();
  }
}

/** `wcagai dlq retry <id>` or `wcagai dlq retry --all | --code C | --host H [--yes]`. */
export function runDlqRetry(id: string | undefined, flags: DlqTargetFlags & { all?: boolean; code?: string; host?: string; yes?: boolean }): Promise<number> {
  const filters: DlqFilter[] = [...(flags.all ? [{ all: true as const }] : []), ...(flags.code ? [{ code: flags.code }] : []), ...(flags.host ? [{ host: flags.host }] : [])];
  if (id && filters.length) throw new WcagaiError('USAGE', 'give an entry id or one of --all, --code, --host, not both');
  if (!id && filters.length !== 1) throw new WcagaiError('USAGE', 'give an entry id, or exactly one of --all, --code C, --host H');
  return withDlq(flags, async (dlq) => {
    if (id) {
      const result = await dlq.retry(id);
      if (flags.json) printJson(result);
      else print(`retrying ${result.id} as scan ${result.jobId}\n`);
      return;
    }
    const filter = filters[0]!;
    if (!flags.yes) {
      const stats = await dlq.stats();
      const n = 'code' in filter ? (stats.byCode[filter.code] ?? 0) : 'host' in filter ? (stats.byHost[hostFilterOf(filter.host)] ?? 0) : stats.total;
      if (!process.stdin.isTTY) throw new WcagaiError('USAGE', `refusing to retry ${n} entries (${describeDlqFilter(filter)}) without --yes: no terminal to confirm on`);
      if (!(await confirm(`retry ${n} DLQ entries (${describeDlqFilter(filter)})?`))) {
        process.stderr.write('nothing retried\n');
        return;
      }
    }
    const result = await dlq.retryMany(filter);
    if (flags.json) printJson(result);
    else print(dlqBulkText(result));
    // Stopped early (a full queue, Redis gone): entries it did not reach stay dead, which a script must see.
    return result.stoppedBy ? 1 : 0;
  });
}

/** `wcagai dlq delete <id>`. */
export function runDlqDelete(id: string, flags: DlqTargetFlags): Promise<number> {
  return withDlq(flags, async (dlq) => {
    await dlq.remove(id);
    if (flags.json) printJson({ id, deleted: true });
    else print(`deleted ${id}\n`);
  });
}

/** `wcagai dlq purge --older-than 30d`. */
export function runDlqPurge(flags: DlqTargetFlags & { olderThan: string }): Promise<number> {
  // A unit is required: a bare number is milliseconds elsewhere, and "--older-than 30" would empty the DLQ.
  const ms = hasDurationUnit(flags.olderThan) ? parseDuration(flags.olderThan) : null;
  if (ms === null) throw new WcagaiError('USAGE', `--older-than expects a duration with its unit such as 12h or 30d, got "${flags.olderThan}"`);
  return withDlq(flags, async (dlq) => {
    const result = await dlq.purge({ olderThanMs: ms });
    if (flags.json) printJson(result);
    else print(`removed ${result.removed} entries older than ${flags.olderThan}\n`);
  });
}
