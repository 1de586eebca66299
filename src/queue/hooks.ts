import type { Logger } from 'pino';
import type { AiClient } from '../clients/ai.js';
import { companyDomainOf, type HubSpotClient } from '../clients/hubspot.js';
import { IMPACTS, type IntegrationOutcome, type PageResult } from '../domain/scan.js';
import type { ScanView } from './job.js';

/** What the processor runs around storing a successful scan. Neither hook ever throws. */
export interface ScanHooks {
  /** Adds to the result before it is stored (AI suggestions). */
  beforeStore?(result: PageResult, ctx: HookContext): Promise<PageResult>;
  /** Runs once the record is stored (CRM sync); a result it returns is stored in its place. */
  afterStore?(view: ScanView, ctx: HookContext): Promise<PageResult | null>;
}

export interface HookContext {
  jobId: string;
  signal?: AbortSignal;
  log: Logger;
}

export interface ScanHookDeps {
  ai?: AiClient | null;
  hubspot?: HubSpotClient | null;
  /** Public base URL of the API, for report links (WCAGAI_URL). */
  publicUrl?: string | undefined;
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

function degrade(result: PageResult, integration: string): PageResult {
  return { ...result, degraded: [...new Set([...(result.degraded ?? []), integration])] };
}

function withOutcome(result: PageResult, name: string, outcome: IntegrationOutcome): PageResult {
  return { ...result, integrations: { ...result.integrations, [name]: outcome } };
}

/** The HubSpot note of a scan: summary by impact and a link to its HTML report. */
export function noteBody(view: ScanView, result: PageResult, publicUrl?: string): string {
  const nodes = result.violations.reduce((n, v) => n + v.nodes.length, 0);
  const byImpact = IMPACTS.slice()
    .reverse()
    .map((impact) => [impact, result.violations.filter((v) => v.impact === impact).length] as const)
    .filter(([, n]) => n > 0)
    .map(([impact, n]) => `${n} ${impact}`)
    .join(', ');
  const report = `${(publicUrl ?? '').replace(/\/+$/, '')}/api/scans/${encodeURIComponent(view.id)}/report?format=html`;
  const level = `WCAG ${view.options.wcagVersion} ${view.options.wcagLevel}`;
  return [
    `<p><strong>Accessibility scan of ${escapeHtml(view.url)}</strong> (${level}, ${escapeHtml(view.finishedAt ?? '')})</p>`,
    `<p>${result.violations.length} rule(s) violated${byImpact ? ` (${byImpact})` : ''} on ${nodes} element(s).</p>`,
    `<p>Report: <a href="${escapeHtml(report)}">${escapeHtml(report)}</a></p>`,
  ].join('');
}

/**
 * AI suggestions before the record is stored (one call per scan; a failure marks the scan
 * degraded, never failed), and the HubSpot note after (its outcome, failure included, is
 * written on the record: pending first, so a worker dying in between leaves a trace).
 */
export function createScanHooks(deps: ScanHookDeps): ScanHooks {
  const { ai, hubspot } = deps;
  return {
    async beforeStore(result, ctx) {
      let out = result;
      if (ai && result.violations.length > 0) {
        try {
          out = { ...out, suggestions: await ai.suggest(result.violations, ctx.signal, ctx.log) };
        } catch (err) {
          const e = err as Error & { code?: string };
          ctx.log.warn({ event: 'scan.degraded', integration: 'ai', code: e.code }, `AI suggestions unavailable: ${e.message}`);
          out = degrade(out, 'ai');
        }
      }
      if (hubspot) out = withOutcome(out, 'hubspot', { status: 'pending', at: new Date().toISOString() });
      return out;
    },
    async afterStore(view, ctx) {
      const result = view.result;
      if (!hubspot || !result) return null;
      const at = () => new Date().toISOString();
      try {
        // The company of the URL submitted; the page's final URL (after redirects) only when that finds
        // none: a redirect to a shared login or another vendor must not put the note on its company.
        const domains = [...new Set([view.url, result.finalUrl].filter((u): u is string => !!u).map(companyDomainOf))];
        let company: Awaited<ReturnType<HubSpotClient['findCompanyByDomain']>> = null;
        for (const domain of domains) if (!company) company = await hubspot.findCompanyByDomain(domain, ctx.signal);
        if (!company) return withOutcome(result, 'hubspot', { status: 'skipped', at: at(), detail: `no HubSpot company with domain ${domains.join(' or ')}` });
        const noteId = await hubspot.addCompanyNote(company.id, noteBody(view, result, deps.publicUrl), ctx.signal);
        ctx.log.info({ event: 'hubspot.note', companyId: company.id, noteId }, `HubSpot note ${noteId} attached to company ${company.id}`);
        return withOutcome(result, 'hubspot', { status: 'done', at: at(), detail: `note ${noteId} on company ${company.id}` });
      } catch (err) {
        const e = err as Error & { code?: string };
        ctx.log.error({ event: 'scan.degraded', integration: 'hubspot', code: e.code }, `HubSpot sync failed: ${e.message}`);
        return degrade(withOutcome(result, 'hubspot', { status: 'failed', at: at(), ...(e.code ? { code: e.code } : {}), detail: e.message.slice(0, 500) }), 'hubspot');
      }
    },
  };
}
