/**
 * Which names hold credentials, and URLs with their credentials masked: the one set of rules
 * behind log redaction (observability/redact.ts) and the configuration display (config/values.ts).
 */

/**
 * Names whose values never reach a log line, matched on the name lower-cased with everything but
 * letters and digits removed (`X-Auth-Token`, `access_token` and `accessToken` alike). Counts and
 * ids named after a credential (`tokens`, `maxTokens`, `keyCount`, `cacheKey`) are not matched.
 */
const SECRET_NAME =
  /(?:token|(?:api|private|routing|access|signing|encryption)keys?|passphrase|cookies?|dsn|webhook(?:url)?|credentials?|bearer|sessionid|signature)$|secret|passw|authorization|privatekey|^(?:auth|pwd|redisurl)$/;

/** Decisions by name: a line's keys repeat from line to line, so the pattern runs once per name. */
const decided = new Map<string, boolean>();

/** True when a property (or query parameter) named `name` holds a credential. */
export function isSecretName(name: string): boolean {
  let secret = decided.get(name);
  if (secret === undefined) {
    secret = SECRET_NAME.test(name.toLowerCase().replace(/[^a-z0-9]/g, ''));
    // Made-up names (a map logged by its keys) must not grow the cache without bound.
    if (decided.size >= 5_000) decided.clear();
    decided.set(name, secret);
  }
  return secret;
}

/** Query parameters that are credentials besides the names above (`?key=`, `?sig=`, `?session_…=`, `?auth…=`, `?tokenId=`). */
const SECRET_QUERY = /token|secret|passw|api[-_]?key|^key$|^auth|signature|^sig$|session|dsn|^code$/i;

function maskPairs(pairs: string, censor: string): string {
  return pairs
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      if (eq < 0) return pair;
      let name = pair.slice(0, eq);
      try {
        name = decodeURIComponent(name.replace(/\+/g, ' '));
      } catch {
        // a malformed escape: judge the raw name
      }
      return SECRET_QUERY.test(name) || isSecretName(name) ? `${pair.slice(0, eq)}=${censor}` : pair;
    })
    .join('&');
}

/**
 * Userinfo of a URL (`scheme://user:password@`, also one nested in another's query) or of a
 * scheme-relative one, or one whose scheme lost its colon (`https//user:pw@host`, a mistyped
 * setting), at the start: whatever precedes the last `@` of the authority. Slashes and
 * backslashes after the scheme are skipped as WHATWG does for http(s); the authority ends at `/`,
 * `\`, `?`, `#` or a space.
 */
const USERINFO = /(^\s*(?:[a-zA-Z][a-zA-Z0-9+.-]*)?|[a-zA-Z][a-zA-Z0-9+.-]*:)([/\\]{2,})[^/\\?#\s]*@/g;

/**
 * `url` (absolute, or a path with a query) with its credentials replaced by `censor`: the user
 * and password (whatever precedes the last `@` of the authority), and the values of
 * credential-like query and fragment parameters (`token`, `access_token`, `api_key`, `password`,
 * `sig`, …). Text that is not a URL passes through these same rules, so a value that does not
 * parse is masked as well. Log lines (`urlForLog`) and the configuration shown by
 * `wcagai config check` both mask with it.
 */
export function maskUrl(url: string, censor: string): string {
  let text = url;
  // WHATWG drops tabs and newlines anywhere in a URL: `ht\ttp://user:pw@host` is still userinfo.
  if (/[\t\n\r]/.test(text)) text = text.replace(/[\t\n\r]/g, '');
  if (text.includes('@')) text = text.replace(USERINFO, `$1$2${censor}@`);
  const q = text.indexOf('?');
  const h = text.indexOf('#');
  if (q < 0 && h < 0) return text;
  const end = h < 0 ? text.length : h;
  let out = q >= 0 && q < end ? `${text.slice(0, q + 1)}${maskPairs(text.slice(q + 1, end), censor)}` : text.slice(0, end);
  // A fragment of parameters (`#access_token=…`, OAuth's implicit flow) is masked like a query.
  if (h >= 0) out += `#${maskPairs(text.slice(h + 1), censor)}`;
  return out;
}

/**
 * Whether a URL carries a user name or password (`user:password@host`): fetch refuses such a URL
 * and repeats it, password included, in its error. What cannot be parsed is judged by its text.
 */
export function hasUserInfo(url: string): boolean {
  try {
    const u = new URL(url);
    return u.username !== '' || u.password !== '';
  } catch {
    return new RegExp(USERINFO.source).test(url);
  }
}
