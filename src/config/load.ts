import { ConfigError } from './error.js';
import { envSchema, SECRET_KEYS, type Config } from './schema.js';
import { maskUrlCredentials } from './values.js';

export { ConfigError };

/**
 * Validates the environment into a frozen Config. A variable set to nothing but blanks (`PORT=` in
 * a .env, an empty value from an orchestrator) counts as unset: it takes its default instead of
 * coercing to 0 (a random port, rate limiting off, a threshold that always fires).
 */
export function loadConfig(env: Record<string, string | undefined>, overrides: Partial<Record<string, string>> = {}): Config {
  const input: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...env, ...overrides })) if (v !== undefined && v.trim() !== '') input[k] = v;
  const parsed = envSchema.safeParse(input);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const key = String(issue.path[0] ?? '?');
      // A refused value is shown to say which one it was, but a URL setting's credentials stay hidden.
      const value = input[key];
      const shown = (SECRET_KEYS as readonly string[]).includes(key) ? '(secret)' : JSON.stringify(value === undefined ? value : maskUrlCredentials(value));
      return `${key}=${shown}: ${issue.message}`;
    });
    throw new ConfigError(problems);
  }
  return Object.freeze(parsed.data);
}

/** The configuration with secrets masked, for `wcagai config check` and logs. */
export function maskedConfig(config: Config): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(config)) {
    // The Redis URL stays readable (which Redis is the question config check answers), its password hidden.
    if (k === 'REDIS_URL') out[k] = maskUrlCredentials(String(v));
    else if ((SECRET_KEYS as readonly string[]).includes(k) && v !== undefined && !(Array.isArray(v) && v.length === 0)) out[k] = Array.isArray(v) ? v.map(() => '***') : '***';
    // Any other URL-valued setting (REDIS_URL, WCAGAI_URL, AI_BASE_URL, …) may carry credentials.
    else if (typeof v === 'string' && /^[a-z][a-z0-9+.-]*:\/\//i.test(v)) out[k] = maskUrlCredentials(v);
    else out[k] = v;
  }
  return out;
}
