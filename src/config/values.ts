/** Parsers of setting values that code outside the schema needs too, without loading zod. */
import { maskUrl } from './secrets.js';

/**
 * The longest duration a timer may be set to wait, by a setting or a flag: a Node timer past
 * 2^31 - 1 ms fires at once (a SHUTDOWN_TIMEOUT of 25d gave up the shutdown the moment it began),
 * and 24 days leave room for what is added to it (the shutdown's grace, the lock's margin over
 * SCAN_TIMEOUT).
 */
export const MAX_TIMER_WAIT_MS = 24 * 86_400_000;

/** The spellings of a boolean setting, in any case: the one parser `serve` and `scan` share. */
export function parseBoolSetting(value: string): boolean | null {
  const v = value.trim().toLowerCase();
  if (v === 'true' || v === '1' || v === 'yes') return true;
  if (v === 'false' || v === '0' || v === 'no') return false;
  return null;
}

/**
 * A URL with its credentials masked for display as `***`: user and password (`redis://:p@ss@host`
 * is `redis://***@host`, however many `@` the password holds) and the values of query parameters
 * that carry one (`?password=`, `token`, `api_key`, `secret`, …), by the rules log lines use.
 * A value that does not parse as a URL is masked by the same rules; other text is returned as it is.
 */
export function maskUrlCredentials(value: string): string {
  return maskUrl(value, '***');
}
