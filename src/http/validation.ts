import { z } from 'zod';
import type { FieldProblem } from '../queue/submission.js';
import { ValidationError, type FieldError } from './problem.js';

/** zod issues as field errors (`urls[3]`, `viewport.width`). */
export function fieldErrors(error: z.ZodError): FieldError[] {
  return error.issues.map((issue) => {
    let field = '';
    for (const part of issue.path) field += typeof part === 'number' ? `[${part}]` : field ? `.${String(part)}` : String(part);
    if (issue.code === 'unrecognized_keys') return { field: field || (issue.keys ?? []).join(','), message: `unknown field(s): ${(issue.keys ?? []).join(', ')}` };
    return { field: field || '(body)', message: issue.message };
  });
}

/** Parses `value` with `schema` or throws a ValidationError naming each bad field. */
export function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown, what = 'body'): z.output<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new ValidationError(fieldErrors(parsed.error), `invalid ${what}`);
  return parsed.data;
}

/**
 * A check the schema cannot make but that needs neither the network nor Redis (URL syntax and
 * scheme, rule ids, a cursor's form), over the raw fields of a body or query: its problems, or none.
 */
export type FieldCheck = (raw: Readonly<Record<string, unknown>>) => FieldProblem[] | Promise<FieldProblem[]>;

/** Whether `field` is `named` or lies inside it (`urls[2]` in `urls`, `viewport.width` in `viewport`). */
function within(field: string, named: string): boolean {
  return field === named || field.startsWith(`${named}[`) || field.startsWith(`${named}.`);
}

/** Field errors in the order of the schema's fields, array items by index; anything else after. */
function inFieldOrder(errors: FieldError[], order: readonly string[]): FieldError[] {
  const rank = (field: string): [number, number] => {
    const m = /^([^.[]*)(?:\[(\d+)\])?/.exec(field);
    const top = order.indexOf(m?.[1] ?? '');
    return [top < 0 ? order.length : top, m?.[2] === undefined ? -1 : Number(m[2])];
  };
  return errors
    .map((error, i) => ({ error, i, rank: rank(error.field) }))
    .sort((a, b) => a.rank[0] - b.rank[0] || a.rank[1] - b.rank[1] || a.i - b.i)
    .map((e) => e.error);
}

/**
 * Parses `value` with `schema` and runs `checks` on its raw fields, schema or no schema, so one
 * answer names every bad field that can be known without the network: a URL that is no URL is
 * named along with a priority the schema refused. A field the schema already refused (itself or
 * a part of it) is named once, by the schema; the errors come in the schema's field order. When
 * the schema passes and a single check fails, that check's own problem is thrown (INVALID_URL,
 * BLOCKED_TARGET, INVALID_OPTIONS...); otherwise one VALIDATION_FAILED names them all. Checks that
 * need DNS or Redis come after this, on the parsed value.
 */
export async function validateOrThrow<S extends z.ZodType>(schema: S, value: unknown, checks: readonly FieldCheck[], what = 'body'): Promise<z.output<S>> {
  const parsed = schema.safeParse(value);
  const errors = parsed.success ? [] : fieldErrors(parsed.error);
  const raw = value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  const problems: FieldProblem[] = [];
  if (raw) {
    for (const check of checks) {
      for (const problem of await check(raw)) {
        if (!errors.some((e) => within(problem.field, e.field) || within(e.field, problem.field))) problems.push(problem);
      }
    }
  }
  if (parsed.success && problems.length === 0) return parsed.data;
  if (parsed.success && problems.length === 1) throw problems[0]!;
  const order = schema instanceof z.ZodObject ? Object.keys(schema.shape as Record<string, unknown>) : [];
  // Each item names its field: a problem's message without the field it may start with.
  const all = [...errors, ...problems.map((p) => ({ field: p.field, message: p.reason }))];
  throw new ValidationError(inFieldOrder(all, order), `invalid ${what}`);
}
