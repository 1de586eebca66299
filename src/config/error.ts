import { WcagaiError } from '../errors/catalogue.js';

/** A configuration error listing every bad variable at once (zod-free, so the CLI can import it cheaply). */
export class ConfigError extends WcagaiError {
  constructor(readonly problems: string[]) {
    super('USAGE', `invalid configuration:\n${problems.map((p) => `  ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}
