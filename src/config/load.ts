import { ConfigError } from './error.js';
import { envSchema, SECRET_KEYS, type Config } from './schema.js';

export { ConfigError };

/** Validates the environment into a frozen Config; empty strings count as unset. */
export function loadConfig(env: Record<string, string | undefined>, overrides: Partial<Record<string, string>> = {}): Config {
  const input: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...env, ...overrides })) if (v !== undefined && v !== '') input[k] = v;
  const parsed = envSchema.safeParse(input);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const key = String(issue.path[0] ?? '?');
      const shown = (SECRET_KEYS as readonly string[]).includes(key) ? '(secret)' : JSON.stringify(input[key]);
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
    if (k === 'REDIS_URL') out[k] = String(v).replace(/\/\/([^@/]*)@/, '//***@');
    else if ((SECRET_KEYS as readonly string[]).includes(k) && v !== undefined && !(Array.isArray(v) && v.length === 0)) out[k] = Array.isArray(v) ? v.map(() => '***') : '***';
    else out[k] = v;
  }
  return out;
}
