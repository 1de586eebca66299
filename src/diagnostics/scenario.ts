import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { MAX_TIMER_MS, parseDuration } from '../config/schema.js';
import { WcagaiError } from '../errors/catalogue.js';
import { ExpressionError, parseThreshold, type ThresholdExpression } from './expression.js';
import { thresholdProblem } from './thresholds.js';

/** The scenarios shipped with wcagai (`scenarios/` at the package root; same place from src/ and dist/). */
export const SCENARIOS_DIR = fileURLToPath(new URL('../../scenarios/', import.meta.url));
export const DEFAULT_SCENARIO = '100-concurrent-scans';
/** The bound on the load when the scenario gives no maxDuration (raised to cover its stages). */
const DEFAULT_MAX_DURATION_MS = 15 * 60_000;
/** Connections of a scenario that gives none (and no stages). */
const DEFAULT_CONNECTIONS = 10;

/** Relative weights of the request kinds; each request picks one in proportion. */
export interface Mix {
  /** POST /api/scans with `Prefer: wait`: the closed loop (one scan per connection at a time). */
  scan: number;
  /** POST /api/scans without waiting: 202 or 503. */
  enqueue: number;
  /** GET /api/scans/:id of a scan this run submitted. */
  status: number;
  /** GET /health. */
  health: number;
}
export type RequestKind = keyof Mix;
export const REQUEST_KINDS: readonly RequestKind[] = ['scan', 'enqueue', 'status', 'health'];

/** A group of connections started `startMs` after the run began, for a time or a number of requests. */
export interface Stage {
  startMs: number;
  connections: number;
  durationMs: number | null;
  amount: number | null;
  mix: Mix;
}

export interface ScenarioPage {
  /** A path on the fixture site (`/clean.html`) or an absolute http(s) URL. */
  url: string;
  weight: number;
}

export interface Scenario {
  name: string;
  description: string;
  /** Where it was read from. */
  file: string;
  /** `self` (fixture site + service on loopback) or the base URL of a deployment. */
  target: string;
  /** Peak connections over all stages. */
  connections: number;
  stages: Stage[];
  /** `Prefer: wait` seconds of scan requests (1-120). */
  waitSeconds: number;
  /** Client-side deadline of one request. */
  timeoutMs: number;
  /** Hard bound on the load phase, whatever the stages say. */
  maxDurationMs: number;
  pages: ScenarioPage[];
  /** Append a unique query parameter to every scanned URL, so no result comes from the cache. */
  cacheBust: boolean;
  /** Extra fields of every scan body (wcagLevel, rules, …). */
  scanOptions: Record<string, unknown>;
  recovery: { deadlineMs: number };
  /** Settings of the self-contained stack: worker concurrency and environment overrides. */
  stack: { workers: number | null; settings: Record<string, string> };
  thresholds: Record<string, ThresholdExpression[]>;
}

/** A duration as "30s"/"500ms"/"2m" or plain milliseconds; `positive`: 0 is refused (a run, a stage or a bound of no length). */
const durationOf = (positive: boolean) =>
  z.union([z.string(), z.number()]).transform((v, ctx) => {
    const ms = typeof v === 'number' ? (v >= 0 ? Math.round(v) : null) : parseDuration(v);
    if (ms === null) {
      ctx.addIssue({ code: 'custom', message: 'expected a duration such as 500ms, 30s, 10m (or milliseconds)', input: v });
      return z.NEVER;
    }
    if (positive && ms <= 0) {
      ctx.addIssue({ code: 'custom', message: 'expected a duration above 0', input: v });
      return z.NEVER;
    }
    if (ms > MAX_TIMER_MS) {
      ctx.addIssue({ code: 'custom', message: 'expected at most 24d (the longest a timer can wait)', input: v });
      return z.NEVER;
    }
    return ms;
  });
const duration = durationOf(false);
const positiveDuration = durationOf(true);
const count = (min: number, max: number) =>
  z.number({ error: 'expected an integer' }).int('expected an integer').min(min, `expected an integer >= ${min}`).max(max, `expected an integer <= ${max}`);
const weight = z.number({ error: 'expected a number' }).min(0, 'expected a weight >= 0');
const mixSchema = z
  .strictObject({ scan: weight.default(0), enqueue: weight.default(0), status: weight.default(0), health: weight.default(0) })
  .refine((m) => m.scan + m.enqueue + m.status + m.health > 0, 'at least one of scan, enqueue, status, health needs a weight above 0');
// `//host/x` is no path: it would resolve against the fixture site to another host.
const pageUrl = z.string().regex(/^(\/(?!\/)|https?:\/\/)/, 'expected a path on the fixture site ("/clean.html") or an http(s) URL');
const pageSchema = z.union([pageUrl, z.strictObject({ url: pageUrl, weight: z.number({ error: 'expected a number' }).positive('expected a weight > 0').default(1) })], {
  error: 'expected a path, a URL, or { "url": …, "weight": … }',
});
const stageSchema = z
  .strictObject({ start: duration.default(0), connections: count(1, 10_000), duration: positiveDuration.optional(), amount: count(1, 10_000_000).optional(), mix: mixSchema.optional() })
  .refine((s) => (s.duration === undefined) !== (s.amount === undefined), { message: 'give either duration or amount', path: ['duration'] });
const thresholdsSchema = z.record(z.string(), z.array(z.string(), { error: 'expected a list of expressions such as ["p(95)<30000"]' }).min(1, 'expected at least one expression')).transform((raw, ctx) => {
  const out: Record<string, ThresholdExpression[]> = {};
  for (const [metric, sources] of Object.entries(raw)) {
    out[metric] = [];
    sources.forEach((source, i) => {
      try {
        const expression = parseThreshold(source);
        const problem = thresholdProblem(metric, expression);
        if (problem) ctx.addIssue({ code: 'custom', message: problem, path: [metric, i], input: source });
        else out[metric]!.push(expression);
      } catch (err) {
        const message = err instanceof ExpressionError ? err.message : String(err);
        ctx.addIssue({ code: 'custom', message: `"${source}": ${message}`, path: [metric, i], input: source });
      }
    });
  }
  return out;
});

export const scenarioSchema = z
  .strictObject({
    $schema: z.string().optional(),
    name: z.string().min(1).optional(),
    description: z.string().default(''),
    // The API is called at the root of the target (/api/scans, /health): a path would be dropped in silence.
    target: z.union([z.literal('self'), z.string().regex(/^https?:\/\/[^/?#]+\/?$/, 'expected "self" or an http(s) base URL with no path, such as https://wcagai.internal')]).default('self'),
    // No defaults here: a file giving them with `stages` is refused, not silently overruled.
    connections: count(1, 10_000).optional(),
    duration: positiveDuration.optional(),
    amount: count(1, 10_000_000).optional(),
    rampUp: duration.optional(),
    stages: z.array(stageSchema).min(1).optional(),
    wait: count(1, 120).default(120),
    timeout: duration.optional(),
    maxDuration: positiveDuration.optional(),
    mix: mixSchema.default({ scan: 1, enqueue: 0, status: 0, health: 0 }),
    pages: z.array(pageSchema).min(1, 'expected at least one page'),
    cacheBust: z.boolean().default(true),
    scanOptions: z.record(z.string(), z.unknown()).default({}),
    recovery: z.strictObject({ deadline: duration.default(60_000) }).default({ deadline: 60_000 }),
    stack: z
      .strictObject({
        // 0: API only, scans wait for workers elsewhere (or never run).
        workers: count(0, 64).optional(),
        settings: z.record(z.string().regex(/^[A-Z][A-Z0-9_]*$/, 'expected an environment variable name'), z.string()).default({}),
      })
      .default({ settings: {} }),
    thresholds: thresholdsSchema.default({}),
  })
  .superRefine((s, ctx) => {
    if (s.stages) {
      // Each stage has its own connections and length: these would be ignored in silence.
      for (const field of ['connections', 'duration', 'amount', 'rampUp'] as const) {
        if (s[field] !== undefined) ctx.addIssue({ code: 'custom', message: 'does not go with stages (each stage gives its own): remove it, or remove stages', path: [field] });
      }
      return;
    }
    if ((s.duration === undefined) === (s.amount === undefined)) ctx.addIssue({ code: 'custom', message: 'give either duration or amount (or stages)', path: ['duration'] });
    if (s.duration !== undefined && (s.rampUp ?? 0) >= s.duration) ctx.addIssue({ code: 'custom', message: 'rampUp must be shorter than duration', path: ['rampUp'] });
  });

type RawScenario = z.output<typeof scenarioSchema>;

/** Splits `total` over `parts` as evenly as integers allow. */
function share(total: number, parts: number, i: number): number {
  return Math.floor(total / parts) + (i < total % parts ? 1 : 0);
}

/** One stage, or a ramp of up to 10 stages starting evenly over rampUp and ending together. */
function stagesOf(s: RawScenario, mix: Mix): Stage[] {
  if (s.stages) {
    return s.stages.map((st) => ({
      startMs: st.start,
      connections: st.amount !== undefined ? Math.min(st.connections, st.amount) : st.connections,
      durationMs: st.duration ?? null,
      amount: st.amount ?? null,
      mix: st.mix ?? mix,
    }));
  }
  const peak = s.connections ?? DEFAULT_CONNECTIONS;
  const rampUp = s.rampUp ?? 0;
  const connections = s.amount !== undefined ? Math.min(peak, s.amount) : peak;
  const steps = rampUp > 0 ? Math.min(connections, 10) : 1;
  return Array.from({ length: steps }, (_, i) => {
    const startMs = Math.round((rampUp * i) / steps);
    const c = share(connections, steps, i);
    return {
      startMs,
      connections: c,
      durationMs: s.duration !== undefined ? s.duration - startMs : null,
      // Split like the connections, so the stages add up to the amount (each gets at least its connections).
      amount: s.amount !== undefined ? share(s.amount, steps, i) : null,
      mix,
    };
  });
}

/** How long a list of stages runs (`{ duration }` in ms), or how many requests it sends (`{ amount }`); nothing when it does not parse. */
function stagesExtent(raw: unknown): { duration: number } | { amount: number } | Record<string, never> {
  const stages = z.array(stageSchema).safeParse(raw);
  if (!stages.success || stages.data.length === 0) return {};
  const ends = stages.data.filter((st) => st.duration !== undefined).map((st) => st.start + st.duration!);
  if (ends.length) return { duration: Math.max(...ends) };
  return { amount: stages.data.reduce((sum, st) => sum + (st.amount ?? 0), 0) };
}

/**
 * The most connections open at once: ramp steps and overlapping stages run together, so the
 * peak is a sum (a stage with an amount and no duration counts as open to the end).
 */
function peakConnections(stages: readonly Stage[]): number {
  let peak = 0;
  for (const at of stages) {
    let open = 0;
    for (const st of stages) if (st.startMs <= at.startMs && (st.durationMs === null || st.startMs + st.durationMs > at.startMs)) open += st.connections;
    peak = Math.max(peak, open);
  }
  return peak;
}

/** `pages[2].weight` from a zod path. */
function pathText(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out;
}

function issueText(issue: z.core.$ZodIssue): string[] {
  if (issue.code === 'unrecognized_keys') return issue.keys.map((k) => `${pathText([...issue.path, k])}: unknown field`);
  // A bad record key: zod's own message ("Invalid key in record") hides the rule the key broke.
  if (issue.code === 'invalid_key' && issue.issues[0]) return [`${pathText(issue.path)}: ${issue.issues[0].message}`];
  return [`${pathText(issue.path) || '(top level)'}: ${issue.message}`];
}

/** Command-line values that replace the file's. */
export interface ScenarioOverrides {
  connections?: number;
  duration?: string;
  amount?: number;
  target?: string;
}

/** Validates a parsed scenario; every problem is named by its field, all on one line. */
export function parseScenario(raw: unknown, file: string, overrides: ScenarioOverrides = {}): Scenario {
  let input = raw;
  if (raw && typeof raw === 'object' && !Array.isArray(raw)) {
    const o: Record<string, unknown> = { ...(raw as Record<string, unknown>) };
    if (overrides.connections !== undefined) {
      o.connections = overrides.connections;
      // The stages' length (or their amounts) carries over when no duration or amount replaces it.
      if (o.stages !== undefined && o.duration === undefined && o.amount === undefined && overrides.duration === undefined && overrides.amount === undefined) Object.assign(o, stagesExtent(o.stages));
      delete o.stages;
    }
    if (overrides.duration !== undefined) {
      o.duration = overrides.duration;
      delete o.amount;
      delete o.stages;
    }
    if (overrides.amount !== undefined) {
      o.amount = overrides.amount;
      delete o.duration;
      delete o.stages;
    }
    if (overrides.target !== undefined) o.target = overrides.target;
    if (overrides.duration !== undefined) {
      const rampUp = duration.safeParse(o.rampUp ?? 0);
      const total = duration.safeParse(overrides.duration);
      if (rampUp.success && total.success && rampUp.data > 0 && rampUp.data >= total.data) throw new WcagaiError('USAGE', `--duration ${overrides.duration} is not longer than the rampUp of ${file} (${String(o.rampUp)}); give a longer --duration`);
    }
    input = o;
  }
  const parsed = scenarioSchema.safeParse(input);
  if (!parsed.success) throw new WcagaiError('USAGE', `${file}: ${parsed.error.issues.flatMap(issueText).join('; ')}`);
  const s = parsed.data;
  const mix = s.mix as Mix;
  const stages = stagesOf(s, mix);
  const ends = stages.map((st) => st.startMs + (st.durationMs ?? 0));
  return {
    name: s.name ?? file.replace(/^.*[\\/]/, '').replace(/\.json$/, ''),
    description: s.description,
    file,
    target: s.target,
    connections: peakConnections(stages),
    stages,
    waitSeconds: s.wait,
    timeoutMs: s.timeout ?? (s.wait + 15) * 1_000,
    // A maxDuration the file gives is a hard bound; the default is raised to cover the stages.
    maxDurationMs: s.maxDuration ?? Math.max(DEFAULT_MAX_DURATION_MS, ...ends),
    pages: s.pages.map((p) => (typeof p === 'string' ? { url: p, weight: 1 } : { url: p.url, weight: p.weight })),
    cacheBust: s.cacheBust,
    scanOptions: s.scanOptions,
    recovery: { deadlineMs: s.recovery.deadline },
    stack: { workers: s.stack.workers ?? null, settings: s.stack.settings },
    thresholds: s.thresholds,
  };
}

/** A file path, or the name of a shipped scenario (`enqueue-burst`). */
export function resolveScenarioPath(spec: string): string {
  if (existsSync(spec)) return spec;
  const shipped = join(SCENARIOS_DIR, spec.endsWith('.json') ? spec : `${spec}.json`);
  return existsSync(shipped) ? shipped : spec;
}

/** Reads and validates a scenario file (a path or a shipped name). */
export async function loadScenario(spec: string, overrides: ScenarioOverrides = {}): Promise<Scenario> {
  const file = resolveScenarioPath(spec);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new WcagaiError('USAGE', `${spec}: cannot read the scenario: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new WcagaiError('USAGE', `${file}: not valid JSON: ${(err as Error).message}`);
  }
  return parseScenario(raw, file, overrides);
}
