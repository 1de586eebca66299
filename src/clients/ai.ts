import { z } from 'zod';
import { IMPACTS, type RemediationSuggestion, type Violation } from '../domain/scan.js';
import { callUpstream, UpstreamError } from './http.js';
import type { ServicePolicy } from './policies.js';

export interface AiSettings {
  /** OpenAI-compatible base URL, e.g. https://api.openai.com/v1. */
  baseUrl: string;
  apiKey?: string | undefined;
  model: string;
  maxTokens: number;
  /** Rules asked about in one call; the most severe first. */
  maxRules: number;
}

const completionSchema = z.object({
  choices: z.array(z.object({ message: z.object({ content: z.string().nullable() }) })).min(1, 'no choices'),
});

const suggestionsSchema = z.object({
  suggestions: z.array(z.object({ rule: z.string().min(1), fix: z.string().min(1) })),
});

const SYSTEM = [
  'You are a web accessibility expert. For each axe-core rule listed, give one short, concrete fix',
  '(at most two sentences) a developer can apply to the HTML shown. Answer with JSON only:',
  '{"suggestions":[{"rule":"<rule id>","fix":"<fix>"}]}, one entry per rule, in the order given.',
].join(' ');

const clip = (s: string | undefined, n: number) => (s && s.length > n ? `${s.slice(0, n)}…` : (s ?? ''));

/** The rules to ask about: most severe first, at most `max`, each with one example node. */
export function promptFor(violations: readonly Violation[], max: number): { rules: string[]; text: string } {
  const rank = (v: Violation) => (v.impact ? IMPACTS.indexOf(v.impact) : -1);
  const chosen = [...violations].sort((a, b) => rank(b) - rank(a)).slice(0, max);
  const text = chosen
    .map((v) => {
      const node = v.nodes[0];
      return [`rule: ${v.id}`, `impact: ${v.impact ?? 'unknown'}`, `wcag: ${v.wcag.join(', ') || 'n/a'}`, `problem: ${clip(v.help, 200)}`, node ? `html: ${clip(node.html, 300)}` : '', node ? `failure: ${clip(node.failureSummary, 300)}` : '']
        .filter(Boolean)
        .join('\n');
    })
    .join('\n\n');
  return { rules: chosen.map((v) => v.id), text };
}

/** The model's JSON answer, tolerating a Markdown code fence around it. */
export function parseSuggestions(content: string, rules: readonly string[]): RemediationSuggestion[] {
  const json = content.trim().replace(/^```(?:json)?\s*/i, '').replace(/\s*```$/, '');
  let parsed: z.output<typeof suggestionsSchema>;
  try {
    parsed = suggestionsSchema.parse(JSON.parse(json));
  } catch (err) {
    throw new UpstreamError('UPSTREAM_INVALID_RESPONSE', 'ai', `ai: the model's answer is not the JSON asked for (${err instanceof SyntaxError ? 'not JSON' : 'wrong shape'})`, { cause: err });
  }
  const wanted = new Set(rules);
  const seen = new Set<string>();
  return parsed.suggestions.filter((s) => wanted.has(s.rule) && !seen.has(s.rule) && seen.add(s.rule)).map((s) => ({ rule: s.rule, fix: clip(s.fix.trim(), 600) }));
}

/** OpenAI-compatible chat completions: one call per scan, batched over its violated rules. */
export class AiClient {
  constructor(
    private readonly policy: ServicePolicy,
    private readonly settings: AiSettings,
  ) {}

  /** A fix per violated rule (none asked when there is no violation). */
  async suggest(violations: readonly Violation[], signal?: AbortSignal): Promise<RemediationSuggestion[]> {
    if (violations.length === 0) return [];
    const { rules, text } = promptFor(violations, this.settings.maxRules);
    const { apiKey, model, maxTokens } = this.settings;
    const answer = await this.policy.execute(
      (s) =>
        callUpstream({
          service: 'ai',
          method: 'POST',
          url: `${this.settings.baseUrl.replace(/\/+$/, '')}/chat/completions`,
          headers: apiKey ? { authorization: `Bearer ${apiKey}` } : {},
          body: {
            model,
            max_tokens: maxTokens,
            temperature: 0.2,
            response_format: { type: 'json_object' },
            messages: [
              { role: 'system', content: SYSTEM },
              { role: 'user', content: text },
            ],
          },
          schema: completionSchema,
          // A completion creates nothing.
          idempotent: true,
          signal: s,
          secrets: [apiKey],
        }),
      signal,
    );
    const content = answer.value.choices[0]!.message.content;
    if (!content) throw new UpstreamError('UPSTREAM_INVALID_RESPONSE', 'ai', 'ai: the model answered with no content');
    return parseSuggestions(content, rules);
  }
}
