import { z } from 'zod';
import { pagerDutyEvent, pagesOnCall } from '../alerts/notifiers.js';
import type { Alert, ChannelAnswer, Notifier, NotifyAction, Severity } from '../alerts/types.js';
import { callUpstream } from './http.js';
import type { ServicePolicy } from './policies.js';

const answerSchema = z.object({ status: z.string(), message: z.string().optional(), dedup_key: z.string().optional() });

/** PagerDuty Events API v2: error and critical alerts, triggered and resolved under a stable dedup key. */
export class PagerDutyNotifier implements Notifier {
  readonly channel = 'pagerduty';

  constructor(
    private readonly policy: ServicePolicy,
    private readonly settings: { eventsUrl: string; routingKey: string },
  ) {}

  accepts(severity: Severity): boolean {
    return pagesOnCall(severity);
  }

  async send(alert: Alert, action: NotifyAction, context: { source: string; dedupKey: string }, signal?: AbortSignal): Promise<ChannelAnswer> {
    const answer = await this.policy.execute(
      (s) =>
        callUpstream({
          service: 'pagerduty',
          method: 'POST',
          url: this.settings.eventsUrl,
          body: pagerDutyEvent(alert, action, this.settings.routingKey, context.source, context.dedupKey),
          schema: answerSchema,
          // The dedup_key makes a repeated event harmless.
          idempotent: true,
          signal: s,
          secrets: [this.settings.routingKey],
        }),
      signal,
    );
    return { status: answer.status, body: answer.raw };
  }
}
