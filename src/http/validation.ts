import type { z } from 'zod';
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
