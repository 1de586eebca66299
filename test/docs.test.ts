import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { envSchema } from '../src/config/schema.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const SERVICES = ['AI', 'APOLLO', 'HUBSPOT', 'SLACK', 'PAGERDUTY'];
const RULES = ['ERROR_RATE', 'QUEUE_DEPTH', 'QUEUE_UTILIZATION', 'BREAKER_OPEN', 'DLQ_GROWTH', 'RSS', 'WORKERS_MISSING'];

/** True when README names the variable, literally or through a documented family pattern. */
function documented(name: string): boolean {
  if (readme.includes(`\`${name}\``)) return true;
  const service = SERVICES.find((s) => name.startsWith(`${s}_`));
  const suffix = service ? name.slice(service.length) : '';
  if (service && readme.includes(`\`${suffix}\``) && readme.includes(`\`${service}\``)) return true;
  const rule = RULES.find((r) => name.startsWith(`ALERT_${r}_`));
  return !!rule && readme.includes(`\`${rule}\``) && readme.includes(`\`_${name.slice(`ALERT_${rule}_`.length)}\``);
}

describe('README', () => {
  it('documents every configuration variable', () => {
    const missing = Object.keys(envSchema.shape).filter((name) => !documented(name));
    expect(missing).toEqual([]);
  });

  it('shows the two commands for a fresh machine', () => {
    expect(readme).toContain('npm ci && npx wcagai scan https://');
    expect(readme).toMatch(/```sh\nnpm test\n```/);
  });
});
