import { writeFile } from 'node:fs/promises';
import { leakFromFlags, reexecWithGc } from '../app/leak.js';
import { leakHtml, leakText } from '../diagnostics/leak-report.js';
import { MAX_TIMER_MS, parseDuration } from '../config/schema.js';
import { WcagaiError } from '../errors/catalogue.js';
import { checkOutputFile } from './output-file.js';

export interface LeakCommandFlags {
  concurrent: number;
  cycles: number;
  pages?: number;
  url?: string[];
  maxGrowth: string;
  tolerance: string;
  warmup?: number;
  maxDuration: string;
  timeout?: number;
  heapSnapshots?: string;
  report?: string;
  json?: boolean;
}

const UNITS: Record<string, number> = { b: 1, kb: 2 ** 10, k: 2 ** 10, mb: 2 ** 20, m: 2 ** 20, gb: 2 ** 30, g: 2 ** 30, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30 };

/** `50MB`, `512kb`, `1.5GB` or plain bytes; binary units (1 MB = 2^20 bytes). */
export function parseSize(value: string, flag: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(value);
  const unit = UNITS[(m?.[2] || 'b').toLowerCase()];
  if (!m || unit === undefined) throw new WcagaiError('USAGE', `${flag} expects a size such as 50MB, 512KB or bytes, got "${value}"`);
  return Math.round(Number(m[1]) * unit);
}

/** `wcagai leak`: 0 pass, 99 leak (1 on a tool error, thrown). Re-executes itself with --expose-gc when needed. */
export async function runLeakCommand(flags: LeakCommandFlags): Promise<0 | 1 | 99> {
  if (flags.report !== undefined) checkOutputFile(flags.report, '--report');
  const maxGrowth = parseSize(flags.maxGrowth, '--max-growth');
  const tolerance = parseSize(flags.tolerance, '--tolerance');
  const maxDurationMs = parseDuration(flags.maxDuration);
  if (maxDurationMs === null || maxDurationMs <= 0 || maxDurationMs > MAX_TIMER_MS) throw new WcagaiError('USAGE', `--max-duration expects a duration such as 30m or 2h (at most 24d), got "${flags.maxDuration}"`);
  const child = await reexecWithGc();
  if (child !== null) return (child === 0 || child === 99 ? child : 1) as 0 | 1 | 99;
  const tty = process.stderr.isTTY === true;
  const result = await leakFromFlags(
    { concurrent: flags.concurrent, cycles: flags.cycles, ...(flags.pages !== undefined ? { pages: flags.pages } : {}), maxGrowth, tolerance, maxDurationMs, ...(flags.url ? { url: flags.url } : {}), ...(flags.heapSnapshots !== undefined ? { heapSnapshots: flags.heapSnapshots } : {}), ...(flags.warmup !== undefined ? { warmup: flags.warmup } : {}), ...(flags.timeout !== undefined ? { timeoutMs: flags.timeout } : {}) },
    tty
      ? (p) => {
          const heap = p.last ? `${(p.last.heapUsed / 2 ** 20).toFixed(1)} MB` : '-';
          const chromium = p.last?.chromiumRss ? `${Math.round(p.last.chromiumRss / 2 ** 20)} MB` : '-';
          process.stderr.write(`\r\x1b[2Kleak cycle ${p.cycle}/${p.cycles}  scans ${p.scans}  errors ${p.errors}  heap ${heap}  chromium ${chromium}`);
        }
      : undefined,
  );
  if (tty) process.stderr.write('\r\x1b[2K');
  if (flags.report !== undefined) {
    await writeFile(flags.report, leakHtml(result)).catch((err: NodeJS.ErrnoException) => {
      throw new WcagaiError('USAGE', `cannot write ${flags.report}: ${err.code ?? err.message}`);
    });
  }
  if (flags.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else process.stdout.write(leakText(result));
  if (result.inconclusive) {
    process.stderr.write(`wcagai leak: ${result.inconclusive}\n`);
    return 1;
  }
  return result.verdict === 'pass' ? 0 : 99;
}
