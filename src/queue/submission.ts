import type { z } from 'zod';
import { pickScanOptions, type Priority, type scanOptionsSchema } from '../domain/request.js';
import { DEFAULT_SCAN_OPTIONS, type ScanOptions } from '../domain/scan.js';
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

// What the resolver of a pre-check answers: a host name only DNS can judge, left to admitUrl.
const NEEDS_DNS = new Error('the target policy needs DNS for this host');

/**
 * What can be known of a URL without the network: syntax, scheme, credentials, and the target
 * policy for address literals, reserved names and SCAN_ALLOWED_HOSTS. A host name that only DNS
 * can judge passes here; admitUrl checks it. Undefined when nothing is wrong so far.
 */
export async function urlProblem(raw: string, policy: TargetPolicy, field = 'url'): Promise<FieldProblem | undefined> {
  try {
    await checkTarget(parseTargetUrl(raw), { ...policy, resolve: () => Promise.reject(NEEDS_DNS) });
    return undefined;
  } catch (err) {
    if (err === NEEDS_DNS) return undefined;
    if (!isWcagaiError(err)) throw err;
    return new FieldProblem(err.code, field, err.message);
  }
}

/** Unknown rule ids of `rules` and of `disableRules`, one problem per field, from raw values. */
export function ruleProblems(raw: Readonly<Record<string, unknown>>): FieldProblem[] {
  const problems: FieldProblem[] = [];
  for (const field of ['rules', 'disableRules'] as const) {
    const ids = raw[field];
    if (!Array.isArray(ids) || !ids.every((id): id is string => typeof id === 'string')) continue;
    try {
      validateScanOptions({ ...DEFAULT_SCAN_OPTIONS, [field]: ids });
    } catch (err) {
      if (!isWcagaiError(err)) throw err;
      problems.push(new FieldProblem(err.code, field, err.message));
    }
  }
  return problems;
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
