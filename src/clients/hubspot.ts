import { z } from 'zod';
import { callUpstream } from './http.js';
import type { ServicePolicy } from './policies.js';

export interface HubSpotSettings {
  baseUrl: string;
  token: string;
}

const companySearchSchema = z.object({
  total: z.number().optional(),
  results: z.array(z.object({ id: z.string(), properties: z.record(z.string(), z.string().nullable()).optional() })),
});

const noteSchema = z.object({ id: z.string() });

/** HubSpot's association type id of note → company (HUBSPOT_DEFINED). */
export const NOTE_TO_COMPANY = 190;

/** The domain HubSpot keeps for a company: host name without `www.`. */
export function companyDomainOf(url: string): string {
  return new URL(url).hostname.toLowerCase().replace(/^www\./, '');
}

/** HubSpot CRM: finds the company of a domain and attaches notes to it. */
export class HubSpotClient {
  constructor(
    private readonly policy: ServicePolicy,
    private readonly settings: HubSpotSettings,
  ) {}

  /** `idempotent`: the call creates nothing (a search); a note create is retried only when it provably did not happen. */
  private call<T>(method: 'POST', path: string, body: unknown, schema: z.ZodType<T>, idempotent: boolean, signal?: AbortSignal) {
    return this.policy.execute(
      (s) =>
        callUpstream({
          service: 'hubspot',
          method,
          url: `${this.settings.baseUrl.replace(/\/+$/, '')}${path}`,
          headers: { authorization: `Bearer ${this.settings.token}` },
          body,
          schema,
          signal: s,
          secrets: [this.settings.token],
          idempotent,
        }),
      signal,
    );
  }

  /** The id and name of the company whose domain is `domain`, or null. */
  async findCompanyByDomain(domain: string, signal?: AbortSignal): Promise<{ id: string; name: string | null } | null> {
    const answer = await this.call(
      'POST',
      '/crm/v3/objects/companies/search',
      { filterGroups: [{ filters: [{ propertyName: 'domain', operator: 'EQ', value: domain }] }], properties: ['name', 'domain'], limit: 1 },
      companySearchSchema,
      true,
      signal,
    );
    const first = answer.value.results[0];
    return first ? { id: first.id, name: first.properties?.name ?? null } : null;
  }

  /** Creates a note (`body` is HTML) attached to the company; resolves to the note's id. */
  async addCompanyNote(companyId: string, body: string, signal?: AbortSignal): Promise<string> {
    const answer = await this.call(
      'POST',
      '/crm/v3/objects/notes',
      {
        properties: { hs_timestamp: new Date().toISOString(), hs_note_body: body },
        associations: [{ to: { id: companyId }, types: [{ associationCategory: 'HUBSPOT_DEFINED', associationTypeId: NOTE_TO_COMPANY }] }],
      },
      noteSchema,
      false,
      signal,
    );
    return answer.value.id;
  }
}
