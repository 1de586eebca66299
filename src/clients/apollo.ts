import { z } from 'zod';
import { callUpstream } from './http.js';
import type { ServicePolicy } from './policies.js';

export interface ApolloSettings {
  baseUrl: string;
  apiKey: string;
}

export interface CompanyQuery {
  /** Keywords describing the companies (Apollo keyword tags). */
  keywords: string[];
  industries?: string[];
  /** Headquarters locations, e.g. "Berlin, Germany". */
  locations?: string[];
  /** At most this many companies. */
  limit: number;
}

export interface Company {
  name: string;
  /** The company website as an https URL. */
  website: string;
  domain: string;
}

const organizationSchema = z.object({
  name: z.string().nullish(),
  website_url: z.string().nullish(),
  primary_domain: z.string().nullish(),
});

const searchSchema = z.object({
  organizations: z.array(organizationSchema).optional(),
  accounts: z.array(organizationSchema).optional(),
  pagination: z.object({ page: z.coerce.number(), total_pages: z.coerce.number() }).optional(),
});

const MAX_PAGES = 10;
const PER_PAGE = 100;

/** The website of an organization record as an https URL and bare domain, or null. */
export function websiteOf(org: z.output<typeof organizationSchema>): { website: string; domain: string } | null {
  const raw = org.website_url || (org.primary_domain ? `https://${org.primary_domain}` : '');
  if (!raw) return null;
  try {
    const u = new URL(/^https?:\/\//i.test(raw) ? raw : `https://${raw}`);
    if (!u.hostname.includes('.')) return null;
    const domain = u.hostname.toLowerCase().replace(/^www\./, '');
    return { website: `https://${u.hostname.toLowerCase()}/`, domain };
  } catch {
    return null;
  }
}

/** Apollo company search: finds the websites of companies by keywords, industry and location. */
export class ApolloClient {
  constructor(
    private readonly policy: ServicePolicy,
    private readonly settings: ApolloSettings,
  ) {}

  async searchCompanies(query: CompanyQuery, signal?: AbortSignal): Promise<Company[]> {
    const found = new Map<string, Company>();
    const tags = [...query.keywords, ...(query.industries ?? [])];
    // Fixed for the whole run: Apollo pages by offset ((page - 1) * per_page), so a page size that
    // changed between pages would read some rows twice and skip others.
    const perPage = Math.min(PER_PAGE, Math.max(query.limit, 10));
    for (let page = 1; page <= MAX_PAGES && found.size < query.limit; page++) {
      const answer = await this.policy.execute(
        (s) =>
          callUpstream({
            service: 'apollo',
            method: 'POST',
            url: `${this.settings.baseUrl.replace(/\/+$/, '')}/api/v1/mixed_companies/search`,
            headers: { 'x-api-key': this.settings.apiKey, 'cache-control': 'no-cache' },
            body: { ...(tags.length ? { q_organization_keyword_tags: tags } : {}), ...(query.locations?.length ? { organization_locations: query.locations } : {}), page, per_page: perPage },
            schema: searchSchema,
            // A search creates nothing.
            idempotent: true,
            signal: s,
            secrets: [this.settings.apiKey],
          }),
        signal,
      );
      const orgs = [...(answer.value.organizations ?? []), ...(answer.value.accounts ?? [])];
      for (const org of orgs) {
        const site = websiteOf(org);
        if (site && !found.has(site.domain) && found.size < query.limit) found.set(site.domain, { name: org.name ?? site.domain, ...site });
      }
      const pages = answer.value.pagination?.total_pages ?? page;
      if (orgs.length === 0 || page >= pages) break;
    }
    return [...found.values()];
  }
}
