import { z } from 'zod';
import type { ScanOptions } from './scan.js';

const ruleIds = z.array(z.string().regex(/^[a-z0-9-]{1,64}$/, 'expected an axe rule id')).max(200);
const selectors = z.array(z.string().min(1).max(1_000)).max(50);

/** The scan options every entry point accepts (API bodies, batches, job payloads). */
export const scanOptionsSchema = z.object({
  wcagLevel: z.enum(['A', 'AA', 'AAA']).default('AA'),
  wcagVersion: z.enum(['2.0', '2.1', '2.2']).default('2.2'),
  bestPractice: z.boolean().default(false),
  rules: ruleIds.optional(),
  disableRules: ruleIds.optional(),
  include: selectors.optional(),
  exclude: selectors.optional(),
  viewport: z.object({ width: z.number().int().min(200).max(7_680), height: z.number().int().min(200).max(7_680) }).strict().optional(),
});

export const prioritySchema = z.enum(['high', 'normal', 'low']).default('normal');
export type Priority = z.output<typeof prioritySchema>;

const url = z.string().min(1).max(2_048);

/** `POST /api/scans` body. */
export const scanRequestSchema = scanOptionsSchema.extend({ url, priority: prioritySchema }).strict();
export type ScanRequestBody = z.output<typeof scanRequestSchema>;

/** `POST /api/batches` body: a URL list or a sitemap, with shared options. */
export const batchRequestSchema = scanOptionsSchema
  .extend({
    urls: z.array(url).min(1).max(10_000).optional(),
    sitemap: url.optional(),
    limit: z.number().int().min(1).max(10_000).optional(),
    priority: prioritySchema,
  })
  .strict()
  .refine((b) => (b.urls ? !b.sitemap : !!b.sitemap), { message: 'give either urls or sitemap', path: ['urls'] });
export type BatchRequestBody = z.output<typeof batchRequestSchema>;

/** The ScanOptions part of a validated body, without undefined fields. */
export function pickScanOptions(body: z.output<typeof scanOptionsSchema>): ScanOptions {
  const out: ScanOptions = { wcagLevel: body.wcagLevel, wcagVersion: body.wcagVersion, bestPractice: body.bestPractice };
  if (body.rules) out.rules = body.rules;
  if (body.disableRules) out.disableRules = body.disableRules;
  if (body.include) out.include = body.include;
  if (body.exclude) out.exclude = body.exclude;
  if (body.viewport) out.viewport = body.viewport;
  return out;
}
