import { readFileSync } from 'node:fs';

let pkg: { name: string; version: string } | undefined;

/** wcagai's name and version, from its package.json. */
export function toolInfo(): { name: string; version: string } {
  pkg ??= JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { name: string; version: string };
  return { name: pkg.name, version: pkg.version };
}
