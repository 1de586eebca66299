import { CommanderError, type Option } from 'commander';
import { MAX_TIMER_WAIT_MS } from '../config/values.js';
import { VIEWPORT_SIZE } from '../domain/scan.js';

/** Flag value parsers shared by the commands: a bad value is one usage line and exit 1. */

const usage = (message: string): never => {
  throw new CommanderError(1, 'wcagai.usage', message);
};

/**
 * A comma-separated list, repeatable: `--rules a,b --rules c` is `[a, b, c]`. A value with no item
 * (`--rules "$RULES"` with the variable unset) is refused: an empty `--rules` ran every rule, an
 * empty `leak --url` the fixture site.
 */
export const list = (name: string, what: string) => (value: string, previous: string[] = []) => {
  const items = value.split(',').map((s) => s.trim()).filter(Boolean);
  if (items.length === 0) usage(`${name} expects ${what}, got "${value}"`);
  return [...previous, ...items];
};

/** A value that must not be empty (`-o "$REPORT"` with the variable unset); `what` says what the flag expects. */
export const nonEmpty =
  (name: string, what = 'a value') =>
  (value: string) => {
    if (value.trim() === '') usage(`${name} expects ${what}, got "${value}"`);
    return value;
  };

/** A repeatable flag whose values are kept whole (they may hold commas); an empty value is refused. */
export const repeat = (name: string, what?: string) => {
  const one = nonEmpty(name, what);
  return (value: string, previous: string[] = []) => [...previous, one(value).trim()];
};

/**
 * An option that may be given once (its own checks, such as `choices`, kept): a second value is
 * refused instead of silently replacing the first (`--format json … --format sarif`).
 */
export function once(option: Option): Option {
  const parse = option.parseArg;
  return option.argParser((value: string, previous: unknown) => {
    if (previous !== undefined) usage(`${option.long ?? option.flags} given twice: give it once`);
    return parse ? parse(value, previous) : value;
  });
}

export const positiveInt = (name: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) usage(`${name} must be a positive integer, got "${value}"`);
  return n;
};


/**
 * Milliseconds a timer waits for (`--timeout`): a positive integer of at most 24 days. A longer
 * value made Node fire the timer at once, so every page failed "did not finish within" it.
 */
export const timerMs = (name: string) => {
  const positive = positiveInt(name);
  return (value: string) => {
    const n = positive(value);
    if (n > MAX_TIMER_WAIT_MS) usage(`${name} must be at most ${MAX_TIMER_WAIT_MS} ms (24 days: a timer cannot wait longer), got "${value}"`);
    return n;
  };
};

export const nonNegativeInt = (name: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) usage(`${name} must be an integer >= 0, got "${value}"`);
  return n;
};

export const intFrom = (name: string, min: number, max: number) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) usage(`${name} must be an integer from ${min} to ${max}, got "${value}"`);
  return n;
};

/** A TCP port; the message names the flag (`--port`, `--health-port`). */
export const portNumber = (name: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) usage(`${name} must be 0-65535, got "${value}"`);
  return n;
};

/** `WIDTHxHEIGHT` in CSS pixels (`375x667`), each within the sizes the API accepts. */
export const viewportSize = (value: string) => {
  const match = /^\s*(\d{1,5})\s*[xX×]\s*(\d{1,5})\s*$/.exec(value);
  const width = Number(match?.[1]);
  const height = Number(match?.[2]);
  const { min, max } = VIEWPORT_SIZE;
  if (!match || width < min || width > max || height < min || height > max) usage(`--viewport expects WIDTHxHEIGHT with each from ${min} to ${max}, e.g. 375x667, got "${value}"`);
  return { width, height };
};
