/**
 * Writes RELIABILITY.md from the figures the reliability suite recorded in reliability-results/
 * (`npm run test:reliability` first, then `npm run reliability:report`). Nothing in the tables is
 * typed by hand: re-run both before each release.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RESULTS_DIR } from './results.js';

interface Section {
  title: string;
  /** What the scenario proves, as asserted by its test. */
  promise: string;
}

/** In the order of the issue: faults, then hostile input. */
const SECTIONS: Record<string, Section> = {
  'worker-kill': {
    title: '1. Worker processes killed with SIGKILL under load',
    promise: 'Every scan ends completed or in the DLQ exactly once; no result is stored twice; losses and duplicates are both 0.',
  },
  'redis-restart': {
    title: '2. Redis (AOF) restarted under load',
    promise: 'While Redis is down the API answers 503 problem+json; it recovers by itself; every scan accepted with 202 completes.',
  },
  'chromium-kill': {
    title: '3. Chromium killed in the middle of scans',
    promise: 'The pool relaunches the browser, the affected scans are retried and complete, and no orphan Chromium process remains.',
  },
  'ai-outage': {
    title: '4. AI endpoint failing 100% for 30 s, then recovering',
    promise: 'The ai breaker opens and closes again; no scan fails because of it; scans during the outage are marked degraded.',
  },
  sigterm: {
    title: '5. SIGTERM to serve (embedded worker) under load',
    promise: 'In-flight requests are answered, active scans finish or go back to the queue, the process exits 0 within the shutdown timeout, nothing is lost.',
  },
  soak: {
    title: '6. Soak: fifteen minutes of moderate load',
    promise: 'No error; the memory of Node and of Chromium stays flat: Node by its slope (95 % interval), Chromium by its climb still under way at the end (it moves in steps).',
  },
  fuzz: {
    title: '7. Property-based fuzzing of every public route',
    promise: 'At least 10,000 random and malformed requests: zero 5xx, every error a valid problem+json, the server healthy afterwards.',
  },
  ssrf: {
    title: '8. SSRF targets',
    promise: 'At least 30 attack targets refused by the server and by the worker with default settings; the canary server is never reached.',
  },
  access: {
    title: '9. Access control and secrets',
    promise: 'Every admin route refuses missing, wrong and near-miss tokens; API keys are enforced; no configured secret appears in the log file.',
  },
  'slow-clients': {
    title: '10. Slow and oversized clients',
    promise: 'Slow-loris headers, huge headers, oversized bodies and idle connections are bounded by server timeouts and limits; other clients keep being served.',
  },
};

function value(v: unknown): string {
  if (Array.isArray(v)) return v.map((x) => (typeof x === 'object' && x !== null ? JSON.stringify(x) : String(x))).join(', ');
  if (typeof v === 'object' && v !== null) return JSON.stringify(v);
  return String(v);
}

function escape(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

export function renderReliability(results: Array<Record<string, unknown>>): string {
  const byName = new Map(results.map((r) => [String(r.scenario), r]));
  const names = [...Object.keys(SECTIONS), ...[...byName.keys()].filter((n) => !(n in SECTIONS)).sort()];
  const lines = [
    '# Reliability',
    '',
    'What wcagai promises under faults, load and hostile input, and the figures of the last run of',
    'the suite that checks it (`npm run test:reliability`: real Redis, real Chromium, real processes,',
    'loopback only; `.ci/run` runs it on every change). This file is generated from that run by',
    '`npm run reliability:report`; nothing in the tables is typed by hand. Re-run both before each',
    'release. The machine the figures come from: 2 cores, shared with other work, so durations are',
    'noisy; the counts (lost, duplicated, 5xx, refused) are what the tests assert.',
    '',
  ];
  for (const name of names) {
    const section = SECTIONS[name] ?? { title: name, promise: '' };
    const r = byName.get(name);
    lines.push(`## ${section.title}`, '');
    if (section.promise) lines.push(section.promise, '');
    if (!r) {
      lines.push('_No figures: the scenario did not run in the last suite run._', '');
      continue;
    }
    lines.push('| figure | value |', '|---|---|');
    for (const [key, v] of Object.entries(r)) {
      if (key === 'scenario' || key === 'command' || key === 'at') continue;
      lines.push(`| ${escape(key)} | ${escape(value(v))} |`);
    }
    lines.push('', `Run ${String(r.at)}. Reproduce: \`${String(r.command ?? `npx vitest run --config vitest.reliability.config.ts test/reliability/${name}.test.ts`)}\``, '');
  }
  return `${lines.join('\n').trimEnd()}\n`;
}

function main(): void {
  if (!existsSync(RESULTS_DIR)) throw new Error(`no ${RESULTS_DIR}: run npm run test:reliability first`);
  const results = readdirSync(RESULTS_DIR)
    .filter((f) => f.endsWith('.json'))
    .map((f) => JSON.parse(readFileSync(join(RESULTS_DIR, f), 'utf8')) as Record<string, unknown>);
  const out = join(import.meta.dirname, '..', '..', 'RELIABILITY.md');
  writeFileSync(out, renderReliability(results));
  console.log(`RELIABILITY.md written from ${results.length} scenario results`);
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) main();
