import { z } from 'zod';
import { slackMessage } from '../alerts/notifiers.js';
import type { Alert, ChannelAnswer, Notifier, NotifyAction, Severity } from '../alerts/types.js';
import { callUpstream } from './http.js';
import type { ServicePolicy } from './policies.js';

/** Slack incoming webhook: every severity, triggers and resolutions. */
export class SlackNotifier implements Notifier {
  readonly channel = 'slack';

  constructor(
    private readonly policy: ServicePolicy,
    private readonly webhookUrl: string,
  ) {}

  accepts(_severity: Severity): boolean {
    return true;
  }

  async send(alert: Alert, action: NotifyAction, context: { source: string }, signal?: AbortSignal): Promise<ChannelAnswer> {
    const answer = await this.policy.execute(
      (s) =>
        callUpstream({
          service: 'slack',
          method: 'POST',
          url: this.webhookUrl,
          body: slackMessage(alert, action, context.source),
          // Slack answers a plain "ok"; anything else is a failure it explains in the body.
          schema: z.string().refine((t) => t.trim() === 'ok', 'expected "ok"'),
          text: true,
          hidePath: true,
          signal: s,
          secrets: [this.webhookUrl],
        }),
      signal,
    );
    return { status: answer.status, body: answer.raw };
  }
}
