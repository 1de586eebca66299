import { loadConfig, maskedConfig } from '../config/load.js';
import { loadDotEnv } from '../config/dotenv.js';

/** `wcagai config check`: validates the environment like `serve` does and prints the effective settings, secrets masked. */
export function runConfigCheck(flags: { json?: boolean }): number {
  loadDotEnv();
  const config = maskedConfig(loadConfig(process.env));
  if (flags.json) {
    process.stdout.write(`${JSON.stringify(config, null, 2)}\n`);
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
