import { loadConfig, maskedConfig } from '../config/load.js';
import { loadDotEnv } from '../config/dotenv.js';
import { envSchema } from '../config/schema.js';

/** `wcagai config check`: validates the environment like `serve` does and prints the effective settings, secrets masked. */
export function runConfigCheck(flags: { json?: boolean }): number {
  loadDotEnv();
  const masked = maskedConfig(loadConfig(process.env));
  // Every setting, in the schema's order: one left unset (ADMIN_TOKEN, SLACK_WEBHOOK_URL, …) is shown as such, not left out.
  const config: Record<string, unknown> = Object.fromEntries(Object.keys(envSchema.shape).map((k) => [k, masked[k]]));
  if (flags.json) {
    process.stdout.write(`${JSON.stringify(config, (_k, v: unknown) => (v === undefined ? null : v), 2)}\n`);
  } else {
    const width = Math.max(...Object.keys(config).map((k) => k.length));
    for (const [k, v] of Object.entries(config)) {
      const shown = v === undefined ? '(unset)' : Array.isArray(v) ? v.join(',') || '(none)' : String(v);
      process.stdout.write(`${k.padEnd(width)}  ${shown}\n`);
    }
    process.stdout.write('configuration is valid\n');
  }
  return 0;
}
