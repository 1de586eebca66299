import { defineConfig } from 'vitest/config';

/**
 * Test files that start neither Chromium nor a Node child process (wcagai CLI, serve, worker,
 * crash children): pure logic, HTTP on loopback and a redis-server child of their own. They run
 * two at a time. Every other file, including any new one until it is listed here, runs one at a
 * time after them: two browser or process files side by side on two cores starve each other
 * (page loads past their deadlines, a fork's event loop stalled for a whole under-pressure sample).
 */
const PARALLEL_FILES = [
  'test/alerts/manager.test.ts',
  'test/alerts/rules.test.ts',
  'test/architecture.test.ts',
  'test/clients/breaker-half-open.test.ts',
  'test/clients/bulkhead-cancel.test.ts',
  'test/clients/crm-ai-clients.test.ts',
  'test/clients/fleet.test.ts',
  'test/clients/policies.test.ts',
  'test/clients/rate-limit.test.ts',
  'test/diagnostics/expression.test.ts',
  'test/diagnostics/fixture-site.test.ts',
  'test/diagnostics/leak-engine.test.ts',
  'test/diagnostics/scenario.test.ts',
  'test/diagnostics/stats.test.ts',
  'test/diagnostics/stress-parts.test.ts',
  'test/docs.test.ts',
  'test/domain/ids.test.ts',
  'test/domain/snapshot.test.ts',
  'test/http/client-errors.test.ts',
  'test/http/corrupt-records.test.ts',
  'test/http/hardening-problems.test.ts',
  'test/http/health-timing.test.ts',
  'test/http/report-of.test.ts',
  'test/http/scans-prefer.test.ts',
  'test/http/scans-queue.test.ts',
  'test/http/scans-redis-hang.test.ts',
  'test/http/scans-url-check.test.ts',
  'test/http/scans-validation.test.ts',
  'test/http/trace-context.test.ts',
  'test/http/validation-every-field.test.ts',
  'test/observability/log-destination.test.ts',
  'test/observability/log-message.test.ts',
  'test/observability/metrics.test.ts',
  'test/observability/redact.test.ts',
  'test/observability/sentry.test.ts',
  'test/queue/admission.test.ts',
  'test/queue/cache-key.test.ts',
  'test/queue/dlq-store.test.ts',
  'test/queue/inflight-marker.test.ts',
  'test/queue/ownership.test.ts',
  'test/reporters/baseline.test.ts',
  'test/reporters/csv.test.ts',
  'test/reporters/dlq.test.ts',
  'test/reporters/html.test.ts',
  'test/reporters/index.test.ts',
  'test/reporters/junit.test.ts',
  'test/reporters/pretty.test.ts',
  'test/reporters/sarif.test.ts',
  'test/reporters/summary.test.ts',
  'test/runbook.test.ts',
  'test/scanner/egress-proxy.test.ts',
  'test/scanner/inputs.test.ts',
  'test/scanner/target-guard.test.ts',
  'test/tui/app.test.tsx',
  'test/tui/color.test.tsx',
  'test/tui/components.test.tsx',
  'test/tui/events.test.ts',
  'test/tui/feed.test.ts',
  'test/tui/format.test.ts',
  'test/tui/keys.test.tsx',
];

const EXCLUDE = ['test/reliability/**', 'node_modules/**'];

export default defineConfig({
  test: {
    // Builds dist/ when stale: the CLI tests spawn the compiled bin/wcagai.
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    reporters: ['default'],
    projects: [
      {
        extends: true,
        test: { name: 'parallel', include: PARALLEL_FILES, exclude: EXCLUDE, maxWorkers: 2, sequence: { groupOrder: 0 } },
      },
      {
        extends: true,
        test: { name: 'serial', include: ['test/**/*.test.{ts,tsx}'], exclude: [...EXCLUDE, ...PARALLEL_FILES], maxWorkers: 1, sequence: { groupOrder: 1 } },
      },
    ],
  },
});
