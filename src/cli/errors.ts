import { ConfigError } from '../config/error.js';
import { isWcagaiError } from '../errors/catalogue.js';

/** One line for the operator; the stack only when WCAGAI_DEBUG is set. */
export function formatError(err: unknown): string {
  if (process.env.WCAGAI_DEBUG && err instanceof Error && err.stack) return `wcagai: ${err.stack}`;
  // Configuration problems are listed together, one a line, so all can be fixed at once.
  if (err instanceof ConfigError) return `wcagai: ${err.message}`;
  const message = err instanceof Error ? err.message : String(err);
  const line = message.split('\n')[0] ?? message;
  return isWcagaiError(err) ? `wcagai: ${line}` : `wcagai: unexpected error: ${line}`;
}

/** Every error that reaches the CLI's edge is a usage or tool error: exit 1. */
export function exitCodeFor(_err: unknown): 1 {
  return 1;
}
