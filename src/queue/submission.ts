import type { z } from 'zod';
import { pickScanOptions, type Priority, type scanOptionsSchema } from '../domain/request.js';
import { DEFAULT_SCAN_OPTIONS, type ScanOptions } from '../domain/scan.js';
import { isWcagaiError, WcagaiError } from '../errors/catalogue.js';
import { badSelectors, validateScanOptions } from '../scanner/options.js';
import { checkTarget, parseTargetUrl } from '../scanner/target-guard.js';
import type { TargetPolicy } from '../scanner/types.js';

/** A field-level problem with a submitted scan, before anything reaches the queue. */
export class FieldProblem extends WcagaiError {
  /**
   * The message without a leading `field: ` (the rule checks name their field in the message): what
   * an `errors` item, which names the field itself, says.
   */
  readonly reason: string;

  constructor(code: WcagaiError['code'], readonly field: string, message: string) {
    super(code, message, { details: { field } });
    this.reason = message.startsWith(`${field}: `) ? message.slice(field.length + 2) : message;
  }
}

/** A target guard error as a problem of `field`; an unresolvable host at submit time is a bad request, not a server fault. */
function problemOf(err: unknown, field: string): FieldProblem {
  if (!isWcagaiError(err)) throw err;
  return new FieldProblem(err.code === 'DNS_FAILURE' ? 'INVALID_URL' : err.code, field, err.message);
}

/** One URL's target policy check, made in two steps by `precheckUrl`. */
export interface UrlCheck {
  /** What is wrong with the URL that can be told without DNS; undefined when nothing is so far. */
  readonly problem: FieldProblem | undefined;
  /** The URL to queue once the check is complete (DNS for a host name only its addresses can judge); rejects with the FieldProblem. */
  admit(): Promise<string>;
}

/**
 * Checks a URL as the server does (syntax, scheme, credentials, target policy) in two steps, so a
 * URL is parsed and checked once: the first, without the network, tells `problem` (what one 400
 * names along with the other fields); `admit()` goes on from where it stopped, with the DNS
 * answer for a host name the policy can only judge by its addresses.
 *
 * The target guard's check runs once: the resolver it is given holds it at its DNS step until
 * `admit()` hands it the real answer. A check never admitted (the request was refused for another
 * field) stays held and is collected with the request: it holds no timer, socket or lookup.
 */
export async function precheckUrl(raw: string, policy: TargetPolicy, field = 'url'): Promise<UrlCheck> {
  let url: URL;
  try {
    url = parseTargetUrl(raw);
  } catch (err) {
    return refused(problemOf(err, field));
  }
  let host: string | undefined;
  let answer!: (addresses: Promise<string[]>) => void;
  let reachedDns!: () => void;
  const atDns = new Promise<'dns'>((resolve) => (reachedDns = () => resolve('dns')));
  const check = checkTarget(url, {
    ...policy,
    resolve: (name) => {
      host = name;
      reachedDns();
      return new Promise<string[]>((resolve, reject) => (answer = (addresses) => void addresses.then(resolve, reject)));
    },
  });
  try {
    await Promise.race([check, atDns]);
  } catch (err) {
    return refused(problemOf(err, field));
  }
  const href = url.href;
  let admitted: Promise<string> | undefined;
  return {
    problem: undefined,
    admit() {
      if (host === undefined) return Promise.resolve(href);
      const name = host;
      admitted ??= (() => {
        answer(Promise.resolve().then(() => policy.resolve(name)));
        return check.then(
          () => href,
          (err: unknown) => {
            throw problemOf(err, field);
          },
        );
      })();
      return admitted;
    },
  };
}

function refused(problem: FieldProblem): UrlCheck {
  return { problem, admit: () => Promise.reject(problem) };
}

/** Checks a URL as the server does: scheme, syntax and target policy (after DNS), in one go. */
export async function admitUrl(raw: string, policy: TargetPolicy, field = 'url'): Promise<string> {
  return (await precheckUrl(raw, policy, field)).admit();
}

/**
 * `include` and `exclude` selectors that do not parse, each named by its index (`include[0]`), from
 * raw values: refused at submission (INVALID_OPTIONS) rather than by the worker after queueing. An
 * empty one is the schema's to name.
 */
export function selectorProblems(raw: Readonly<Record<string, unknown>>): FieldProblem[] {
  const list = (v: unknown) => (Array.isArray(v) ? v : undefined);
  return badSelectors({ include: list(raw.include), exclude: list(raw.exclude) })
    .filter((b) => b.selector.length > 0)
    .map((b) => new FieldProblem('INVALID_OPTIONS', b.field, `${b.field}: ${JSON.stringify(b.selector)} is ${b.problem}`));
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
  // Both known: whether disableRules leaves anything of rules to run (a check of the two together).
  const [rules, disableRules] = [raw.rules, raw.disableRules];
  const strings = (v: unknown): v is string[] => Array.isArray(v) && v.length > 0 && v.every((id) => typeof id === 'string');
  if (problems.length === 0 && strings(rules) && strings(disableRules)) {
    try {
      validateScanOptions({ ...DEFAULT_SCAN_OPTIONS, rules, disableRules });
    } catch (err) {
      if (!isWcagaiError(err)) throw err;
      problems.push(new FieldProblem(err.code, 'disableRules', err.message));
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
