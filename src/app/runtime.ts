import type { Logger } from 'pino';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { createLogger } from '../observability/logger.js';
import { loadDotEnv } from '../config/dotenv.js';

/** Configuration and logger of a long-running command, from the environment (and .env when present). */
export function runtimeFromEnv(overrides: Partial<Record<string, string>> = {}, name?: string): { config: Config; logger: Logger; env: Record<string, string | undefined> } {
  loadDotEnv();
  const env = process.env;
  const config = loadConfig(env, overrides);
  const logger = createLogger({
    level: config.LOG_LEVEL,
    ...(config.LOG_FILE ? { file: config.LOG_FILE } : {}),
    pretty: config.LOG_PRETTY && process.stdout.isTTY === true,
    ...(name ? { name } : {}),
  });
  return { config, logger, env };
}
