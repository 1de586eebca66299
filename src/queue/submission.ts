import type { z } from 'zod';
import { pickScanOptions, type Priority, type scanOptionsSchema } from '../domain/request.js';
import type { ScanOptions } from '../domain/scan.js';
import { isWcagaiError, WcagaiError } from '../errors/catalogue.js';
import { validateScanOptions } from '../scanner/options.js';
import { checkTarget, parseTargetUrl } from '../scanner/target-guard.js';
import type { TargetPolicy } from '../scanner/types.js';

/** A field-level problem with a submitted scan, before anything reaches the queue. */
export class FieldProblem extends WcagaiError {
  constructor(code: WcagaiError['code'], readonly field: string, message: string) {
    super(code, message, { details: { field } });
  }
}

/** Checks a URL as the server does: scheme, syntax and target policy (after DNS). */
export async function admitUrl(raw: string, policy: TargetPolicy, field = 'url'): Promise<string> {
  try {
    const url = parseTargetUrl(raw);
    await checkTarget(url, policy);
    return url.href;
  } catch (err) {
    if (!isWcagaiError(err)) throw err;
    // An unresolvable host at submit time is a bad request, not a server fault.
    const code = err.code === 'DNS_FAILURE' ? 'INVALID_URL' : err.code;
    throw new FieldProblem(code, field, err.message);
  }
}

/** The validated scan options of a request body, refusing unknown rule ids by field. */
export function admitOptions(body: z.output<typeof scanOptionsSchema>): ScanOptions {
  const options = pickScanOptions(body);
  try {
    validateScanOptions(options);
  } catch (err) {
    if (isWcagaiError(err)) throw new FieldProblem(err.code, String(err.details?.field ?? 'rules'), err.message);
    throw err;
  }
  return options;
}

export type { Priority };
