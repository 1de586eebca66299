import { WcagaiError } from '../errors/catalogue.js';

/**
 * Reads `.env` from the working directory into the environment, as every command that takes
 * settings does (variables already set win). No `.env` is fine; one that exists but cannot be
 * read (a directory, no permission) is an error naming it, not silently skipped.
 */
export function loadDotEnv(): void {
  try {
    process.loadEnvFile?.();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    // Node answers a directory named .env with ERR_INVALID_ARG_TYPE ("contents should be a valid string").
    const why = code === 'ERR_INVALID_ARG_TYPE' ? 'not a file' : (code ?? (err as Error).message);
    throw new WcagaiError('USAGE', `cannot read .env in ${process.cwd()}: ${why}`);
  }
}
