import { randomBytes } from 'node:crypto';
import { buildClients } from '../app/integrations.js';
import { queueBatch, type QueuedBatch } from '../app/prospect.js';
import { loadConfig } from '../config/load.js';
import type { WcagLevel, WcagVersion } from '../domain/scan.js';
import { isWcagaiError, WcagaiError } from '../errors/catalogue.js';
import { loadDotEnv } from '../config/dotenv.js';

export interface ProspectFlags {
  query: string;
  industry?: string[];
  location?: string[];
  limit: number;
  level: WcagLevel;
  wcag: WcagVersion;
  url?: string;
  apiKey?: string;
  dryRun?: boolean;
  json?: boolean;
}

const split = (s: string) =>
  s
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);

/** `wcagai prospect`: companies from Apollo, their websites queued as one batch (through --url/WCAGAI_URL, else Redis). */
export async function runProspect(flags: ProspectFlags): Promise<number> {
  loadDotEnv();
  const config = loadConfig(process.env);
  const { apollo } = buildClients(config);
  if (!apollo) throw new WcagaiError('NOT_CONFIGURED', 'Apollo is not configured: set APOLLO_API_KEY (and APOLLO_BASE_URL for another endpoint)');
  const keywords = split(flags.query);
  if (keywords.length === 0) throw new WcagaiError('USAGE', '--query needs at least one keyword');
  const companies = await apollo.searchCompanies({ keywords, industries: flags.industry ?? [], locations: flags.location ?? [], limit: flags.limit }, AbortSignal.timeout(120_000));
  if (companies.length === 0) throw new WcagaiError('NOT_FOUND', `Apollo found no company website for "${flags.query}"`);
  const out = (s: string) => process.stdout.write(s);
  if (flags.dryRun) {
    out(flags.json ? `${JSON.stringify({ companies }, null, 2)}\n` : companies.map((c) => `${c.website}  ${c.name}\n`).join(''));
    return 0;
  }
  const url = flags.url ?? config.WCAGAI_URL;
  const apiKey = flags.apiKey ?? config.API_KEYS[0];
  // Printed before queueing: the Apollo credits are spent, so the list is kept even if queueing fails.
  if (!flags.json) out(companies.map((c) => `${c.website}  ${c.name}\n`).join(''));
  let batch: QueuedBatch;
  try {
    batch = await queueBatch(config, companies.map((c) => c.website), { wcagLevel: flags.level, wcagVersion: flags.wcag, bestPractice: false }, { url, apiKey, requestId: `prospect-${randomBytes(6).toString('hex')}` });
  } catch (err) {
    // The same for --json: the companies are written (with why nothing was queued) before the error line and exit 1.
    if (flags.json) out(`${JSON.stringify({ companies, batch: null, error: { code: isWcagaiError(err) ? err.code : 'INTERNAL', message: err instanceof Error ? err.message : String(err) } }, null, 2)}\n`);
    throw err;
  }
  if (flags.json) out(`${JSON.stringify({ companies, batch }, null, 2)}\n`);
  else {
    for (const r of batch.refused) out(`refused ${r.url}: ${r.reason}\n`);
    out(`queued batch ${batch.id}: ${batch.total} scan(s) at WCAG ${flags.wcag} ${flags.level} (${batch.via === 'api' ? `through ${url}` : 'directly into the queue'}); progress: GET /api/batches/${batch.id}\n`);
  }
  return 0;
}
