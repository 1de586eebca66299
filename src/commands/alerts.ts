import { hostname } from 'node:os';
import { alertSourceOf, buildClients } from '../app/integrations.js';
import type { Alert, Severity } from '../alerts/types.js';
import { loadConfig } from '../config/load.js';
import { WcagaiError } from '../errors/catalogue.js';
import { loadDotEnv } from '../config/dotenv.js';

export interface AlertTestFlags {
  severity: Severity;
  json?: boolean;
}

interface ChannelResult {
  channel: string;
  action: 'trigger' | 'resolve';
  ok: boolean;
  status?: number;
  body?: string;
  error?: string;
}

/**
 * `wcagai alerts test`: sends a test alert to every configured channel (whatever its severity
 * filter: the point is to check the channel) and prints what each answered. PagerDuty's test
 * incident is resolved right after, so nobody is left with an open page. Exit 1 if any failed.
 */
export async function runAlertsTest(flags: AlertTestFlags): Promise<number> {
  loadDotEnv();
  const config = loadConfig(process.env);
  const { notifiers } = buildClients(config);
  if (notifiers.length === 0) throw new WcagaiError('NOT_CONFIGURED', 'no alert channel configured: set SLACK_WEBHOOK_URL and/or PAGERDUTY_ROUTING_KEY');
  const source = alertSourceOf(config);
  const alert: Alert = {
    id: 'test',
    rule: 'TEST',
    severity: flags.severity,
    summary: `[TEST] wcagai test alert (${flags.severity}) from ${hostname()}: the channel works, no action needed`,
    value: 0,
    threshold: 0,
    details: { test: true, sentBy: 'wcagai alerts test' },
  };
  const dedupKey = `wcagai/${config.QUEUE_PREFIX}/test-${Date.now()}`;
  const results: ChannelResult[] = [];
  for (const notifier of notifiers) {
    const actions = notifier.channel === 'pagerduty' ? (['trigger', 'resolve'] as const) : (['trigger'] as const);
    for (const action of actions) {
      try {
        const answer = await notifier.send(alert, action, { source, dedupKey });
        results.push({ channel: notifier.channel, action, ok: true, status: answer.status, body: answer.body });
      } catch (err) {
        const e = err as Error & { code?: string };
        results.push({ channel: notifier.channel, action, ok: false, error: `${e.code ?? e.name}: ${e.message}` });
        break;
      }
    }
  }
  if (flags.json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  else for (const r of results) process.stdout.write(`${r.channel} ${r.action}: ${r.ok ? `${r.status} ${r.body?.trim() || '(empty)'}` : `FAILED ${r.error}`}\n`);
  return results.every((r) => r.ok) ? 0 : 1;
}
