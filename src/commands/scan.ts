import { readFile, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Impact, Report, ScanOptions, WcagLevel, WcagVersion } from '../domain/scan.js';
import { toolInfo } from '../domain/version.js';
import { WcagaiError } from '../errors/catalogue.js';
import { applyBaseline, gateCount, loadBaseline, scopeChange } from '../reporters/baseline.js';
import { formatOfFile, render, type ReportFormat } from '../reporters/index.js';
import { scanBatch } from '../scanner/batch.js';
import { createScanner, deadlinesOf, DEFAULT_SCANNER_CONFIG } from '../scanner/engine.js';
import { dedupeUrls, fetchSitemap, readUrlsFile, type SkippedSitemap } from '../scanner/inputs.js';
import { policyFetch } from '../scanner/policy-fetch.js';
import type { TargetPolicy } from '../scanner/types.js';
import { loadDotEnv } from '../config/dotenv.js';
import { validateScanOptions } from '../scanner/options.js';
import { parseTargetUrl, policyFromEnv } from '../scanner/target-guard.js';
import type { ExitCode } from './exit-codes.js';
import { progressBar } from './progress.js';
import { checkOutputFile } from './output-file.js';

interface ScanFlags {
  urlsFile?: string;
  sitemap?: string;
  limit?: number;
  concurrency: number;
  level: WcagLevel;
  wcag: WcagVersion;
  bestPractice: boolean;
  rules?: string[];
  disableRules?: string[];
  include?: string[];
  exclude?: string[];
  viewport?: { width: number; height: number };
  format?: ReportFormat;
  /** One report per file, each in the format its name asks for (or `format`, with one file). */
  output?: string[];
  failOn: Impact;
  baseline?: string;
  timeout?: number;
  allowPrivate: boolean;
  browserContexts: 'shared' | 'per-slot';
  header?: string[];
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Headers the browser sets itself, or that would change how the request travels. */
const NOT_SETTABLE = new Set(['host', 'content-length', 'connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'proxy-authorization', 'proxy-connection', 'expect']);

/** `--header "Name: value"` flags as a header map (a name given twice keeps its last value). */
export function parseHeaderFlags(values: readonly string[]): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const raw of values) {
    const colon = raw.indexOf(':');
    const name = colon > 0 ? raw.slice(0, colon).trim() : '';
    const value = colon > 0 ? raw.slice(colon + 1).trim() : '';
    if (!TOKEN.test(name)) throw new WcagaiError('USAGE', `--header expects "Name: value", got "${raw.slice(0, 60)}"`);
    // What HTTP allows in a field value: visible characters, spaces and tabs, and Latin-1 bytes.
    if (!/^[\t\x20-\x7e\x80-\xff]*$/.test(value)) throw new WcagaiError('USAGE', `--header ${name}: the value may hold only printable characters (no line breaks or control characters)`);
    if (NOT_SETTABLE.has(name.toLowerCase())) throw new WcagaiError('USAGE', `--header ${name}: set by the browser, cannot be given`);
    headers[name] = value;
  }
  return headers;
}

/** The URL list from arguments, a file and a sitemap, validated before any browser starts. */
async function collectUrls(args: string[], flags: ScanFlags, policy: TargetPolicy): Promise<string[]> {
  if (flags.limit !== undefined && !flags.sitemap) throw new WcagaiError('USAGE', '--limit applies to --sitemap only');
  const urls = args.map((u) => parseTargetUrl(u).href);
  if (flags.urlsFile) urls.push(...(await readUrlsFile(flags.urlsFile)));
  // With private targets refused, the sitemap and every document it leads to are held to the same policy as the pages.
  // A child sitemap of an index that cannot be read is left out, said on stderr (the others are scanned).
  const onSkip = (skipped: SkippedSitemap) => process.stderr.write(`wcagai: skipped ${skipped.message}\n`);
  if (flags.sitemap) urls.push(...(await fetchSitemap(flags.sitemap, { onSkip, ...(flags.limit ? { limit: flags.limit } : {}), ...(policy.allowPrivate ? {} : { fetchImpl: policyFetch(policy) }) })));
  const unique = dedupeUrls(urls);
  if (unique.length === 0) throw new WcagaiError('USAGE', 'no URL to scan: give URLs, --urls-file FILE or --sitemap URL');
  return unique;
}

async function readBaseline(path: string): Promise<Report> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new WcagaiError('USAGE', `cannot read baseline ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return loadBaseline(text, path);
}

/** What the command line knows beside the flags. */
export interface ScanContext {
  /** ALLOW_PRIVATE_TARGETS was set before .env was read (main.ts reads .env before the flags). */
  allowPrivateInEnvironment?: boolean;
}

/**
 * How a private target refused by `wcagai scan` can be let through. --no-allow-private wins over
 * ALLOW_PRIVATE_TARGETS (see main.ts), so with the flag only dropping it or SCAN_ALLOWED_HOSTS helps;
 * without it, ALLOW_PRIVATE_TARGETS refused, from the environment or else from .env.
 */
function refusalHint(allowPrivate: boolean, inEnvironment: boolean): string {
  const allowedHosts = 'list the host in SCAN_ALLOWED_HOSTS';
  if (!allowPrivate) return `drop --no-allow-private or ${allowedHosts} to allow it`;
  const where = inEnvironment ? 'in the environment' : 'in .env';
  const value = (process.env.ALLOW_PRIVATE_TARGETS ?? '').trim();
  return `ALLOW_PRIVATE_TARGETS=${value} ${where}: set it to true or ${allowedHosts} to allow it`;
}

/** The output name that means standard output. */
const STDOUT = '-';

/** The report on standard output: `format`, else pretty (in colour) on a terminal and JSON otherwise. */
function renderToStdout(report: Report, format: ReportFormat | undefined): string {
  const chosen: ReportFormat = format ?? (process.stdout.isTTY ? 'pretty' : 'json');
  return render(report, chosen, { color: chosen === 'pretty' && process.stdout.isTTY === true && !process.env.NO_COLOR });
}

/** `wcagai scan`: exit 0 clean, 2 when the gate finds violations, 1 when a page could not be scanned. */
export async function runScanCommand(args: string[], raw: Record<string, unknown>, context: ScanContext = {}): Promise<ExitCode> {
  const flags = raw as unknown as ScanFlags;
  // ALLOW_PRIVATE_TARGETS, SCAN_ALLOWED_HOSTS, BROWSER_CONTEXTS and the like from .env too, as every command that reads settings.
  loadDotEnv();
  const outputs = flags.output ?? [];
  // `-o -` is standard output, as for most command-line tools (beside files: `-o - -o a11y.sarif`).
  for (const file of outputs) if (file !== STDOUT) checkOutputFile(file, '--output');
  if (outputs.length > 1) {
    if (flags.format !== undefined) throw new WcagaiError('USAGE', '--format applies to one --output: with several, each file takes the format its name asks for (.sarif, .xml JUnit, .html, .csv, .txt pretty, json otherwise)');
    const same = outputs.find((file, i) => outputs.findIndex((other) => resolve(other) === resolve(file)) !== i);
    if (same !== undefined) throw new WcagaiError('USAGE', `--output ${same} given twice`);
  }
  const policy = policyFromEnv(process.env, { allowPrivate: flags.allowPrivate, refusalHint: refusalHint(flags.allowPrivate, context.allowPrivateInEnvironment === true) });
  const options: ScanOptions = {
    wcagLevel: flags.level,
    wcagVersion: flags.wcag,
    bestPractice: flags.bestPractice,
    ...(flags.rules ? { rules: flags.rules } : {}),
    ...(flags.disableRules ? { disableRules: flags.disableRules } : {}),
    ...(flags.include ? { include: flags.include } : {}),
    ...(flags.exclude ? { exclude: flags.exclude } : {}),
    ...(flags.viewport ? { viewport: flags.viewport } : {}),
  };
  validateScanOptions(options);
  const headers = flags.header?.length ? parseHeaderFlags(flags.header) : undefined;
  const baseline = flags.baseline !== undefined ? await readBaseline(flags.baseline) : undefined;
  const urls = await collectUrls(args, flags, policy);

  const scanner = await createScanner({
    ...DEFAULT_SCANNER_CONFIG,
    concurrency: Math.min(flags.concurrency, urls.length),
    contextMode: flags.browserContexts,
    ...deadlinesOf(flags.timeout),
    policy,
  });
  const bar = urls.length > 1 && process.stderr.isTTY ? progressBar(process.stderr, urls.length) : null;
  let report: Report;
  try {
    report = await scanBatch(scanner, urls, options, {
      concurrency: flags.concurrency,
      tool: toolInfo(),
      ...(headers ? { headers } : {}),
      ...(bar ? { onProgress: (p) => bar.update(p.done, p.failed) } : {}),
    });
  } finally {
    bar?.done();
    await scanner.close();
  }
  report.options = { ...options, failOn: flags.failOn, ...(baseline ? { baseline: flags.baseline } : {}) };
  if (baseline) {
    report = applyBaseline(report, baseline);
    // Nothing is listed as fixed then: say why, or an empty "fixed" reads as nothing fixed.
    const change = scopeChange(report.options, baseline.options);
    if (change) process.stderr.write(`wcagai: baseline ${flags.baseline} was made with another scope (${change}): issues missing now are not reported as fixed\n`);
  }

  if (outputs.length > 0) {
    // Every file is attempted: one that cannot be written (the disk filled meanwhile) loses only itself.
    const written: string[] = [];
    const unwritten: string[] = [];
    for (const file of outputs) {
      if (file === STDOUT) {
        process.stdout.write(renderToStdout(report, flags.format));
        written.push(file);
        continue;
      }
      await writeFile(file, render(report, flags.format ?? formatOfFile(file))).then(
        () => written.push(file),
        (err: NodeJS.ErrnoException) => unwritten.push(`${file} (${err.code ?? err.message})`),
      );
    }
    if (unwritten.length) throw new WcagaiError('USAGE', `cannot write ${unwritten.join(', ')}${written.length ? `; written: ${written.join(', ')}` : ''}`);
    const s = report.summary;
    const files = outputs.filter((file) => file !== STDOUT);
    if (files.length) process.stderr.write(`wcagai: ${s.pages} page(s), ${s.violations} violation(s), ${s.nodes} node(s), ${s.pagesFailed} failed; ${files.length > 1 ? 'reports' : 'report'} written to ${files.join(', ')}\n`);
  } else process.stdout.write(renderToStdout(report, flags.format));
  // A page that could not be scanned wins over the gate: the gate saw only part of the site.
  if (report.summary.pagesFailed > 0) return 1;
  return gateCount(report, flags.failOn, baseline !== undefined) > 0 ? 2 : 0;
}
