/** Parsers of setting values that code outside the schema needs too, without loading zod. */

/** The spellings of a boolean setting, in any case: the one parser `serve` and `scan` share. */
export function parseBoolSetting(value: string): boolean | null {
  const v = value.trim().toLowerCase();
  if (v === 'true' || v === '1' || v === 'yes') return true;
  if (v === 'false' || v === '0' || v === 'no') return false;
  return null;
}

/**
 * A URL with its credentials masked for display: user and password (`redis://:p@ss@host` is
 * `redis://***@host`, however many `@` the password holds) and query parameters that carry one
 * (`?password=`, `token`, `key`, `secret`). A value that is not a URL is returned as it is.
 */
export function maskUrlCredentials(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    // Not parseable: still hide anything before the last '@' of the authority, and the values of
    // query parameters named like a credential.
    return value.replace(/\/\/[^/?#]*@/, '//***@').replace(/([?&][^=&#]*(?:pass|secret|token|key|auth)[^=&#]*=)[^&#]*/gi, '$1***');
  }
  const hadUser = url.username !== '' || url.password !== '';
  let query = false;
  for (const key of [...url.searchParams.keys()]) {
    if (/pass|secret|token|key|auth/i.test(key)) {
      url.searchParams.set(key, '***');
      query = true;
    }
  }
  if (!hadUser && !query) return value;
  url.username = '';
  url.password = '';
  const text = url.href;
  return hadUser ? text.replace('//', '//***@') : text;
}
