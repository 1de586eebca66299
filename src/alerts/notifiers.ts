import type { Alert, NotifyAction, Severity } from './types.js';

const ICON: Record<Severity, string> = { info: ':information_source:', warning: ':warning:', error: ':x:', critical: ':rotating_light:' };

/** A Slack incoming-webhook message for an alert or its resolution. */
export function slackMessage(alert: Alert, action: NotifyAction, source: string): { text: string; blocks: unknown[] } {
  const head = action === 'trigger' ? `${ICON[alert.severity]} *${alert.severity.toUpperCase()}* ${alert.summary}` : `:white_check_mark: *RESOLVED* ${alert.summary}`;
  const context = `wcagai · ${source} · alert \`${alert.id}\` · value ${alert.value}, threshold ${alert.threshold}`;
  return {
    text: `${action === 'trigger' ? `[${alert.severity}]` : '[resolved]'} ${alert.summary} (${source})`,
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text: head } },
      { type: 'context', elements: [{ type: 'mrkdwn', text: context }] },
    ],
  };
}

/** Only these severities page through PagerDuty. */
export function pagesOnCall(severity: Severity): boolean {
  return severity === 'error' || severity === 'critical';
}

export interface PagerDutyEvent {
  routing_key: string;
  event_action: NotifyAction;
  dedup_key: string;
  payload?: {
    summary: string;
    source: string;
    severity: Severity;
    timestamp: string;
    component: string;
    group: string;
    class: string;
    custom_details: Record<string, unknown>;
  };
}

/** A PagerDuty Events API v2 event; a resolve carries only the dedup key. */
export function pagerDutyEvent(alert: Alert, action: NotifyAction, routingKey: string, source: string, dedupKey: string, now = new Date()): PagerDutyEvent {
  if (action === 'resolve') return { routing_key: routingKey, event_action: 'resolve', dedup_key: dedupKey };
  return {
    routing_key: routingKey,
    event_action: 'trigger',
    dedup_key: dedupKey,
    payload: {
      // PagerDuty truncates summaries at 1024 characters.
      summary: alert.summary.slice(0, 1_024),
      source,
      severity: alert.severity,
      timestamp: now.toISOString(),
      component: 'wcagai',
      group: alert.rule.toLowerCase(),
      class: alert.id,
      custom_details: { value: alert.value, threshold: alert.threshold, ...alert.details },
    },
  };
}
