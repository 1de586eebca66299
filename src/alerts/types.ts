import type { AlertRuleName } from '../config/schema.js';

export type Severity = 'info' | 'warning' | 'error' | 'critical';
export const SEVERITIES: readonly Severity[] = ['info', 'warning', 'error', 'critical'];

/** Live figures of the deployment; a figure left undefined is unknown and its rule keeps its last state. */
export interface Figures {
  queue?: { waiting: number; active: number; utilizationPercent: number; maxCapacity: number };
  /** Scans that finished (for good) within the error-rate window. */
  scans?: { completed: number; failed: number; windowMs: number };
  /**
   * Breakers of this process and of every other process (from heartbeats), each process once.
   * `trialInFlight` tells a HALF_OPEN breaker running its trial call from one whose open period is
   * over with no call since; absent (a process of an older version), a HALF_OPEN one is in its trial.
   */
  breakers?: Array<{ name: string; state: string; process: string; trialInFlight?: boolean }>;
  dlq?: { size: number; lastHourAdded: number };
  /** Resident memory of this process and of every other process (from heartbeats), each process once. */
  processes?: Array<{ id: string; rssBytes: number }>;
  /** Workers with a live heartbeat (this process's embedded worker included). */
  workers?: number;
}

/** A rule that fires. */
export interface Alert {
  /** Stable per rule: `queue_depth`, `breaker_open`, … (also the PagerDuty dedup key's suffix). */
  id: string;
  rule: AlertRuleName | 'TEST';
  severity: Severity;
  summary: string;
  value: number;
  threshold: number;
  details: Record<string, unknown>;
}

export interface RuleSettings {
  enabled: boolean;
  threshold: number;
  severity: Severity;
  cooldownMs: number;
}

export interface AlertSettings {
  rules: Record<AlertRuleName, RuleSettings>;
  errorRateWindowMs: number;
  errorRateMinScans: number;
  /** How long a firing alert must stay clear before it is resolved (0: at once). */
  resolveAfterMs: number;
}

export type NotifyAction = 'trigger' | 'resolve';

/** What a channel answered. */
export interface ChannelAnswer {
  status: number;
  body: string;
}

/** A notification channel (Slack, PagerDuty), implemented in src/clients. */
export interface Notifier {
  readonly channel: string;
  /** Whether alerts of this severity go to this channel. */
  accepts(severity: Severity): boolean;
  send(alert: Alert, action: NotifyAction, context: { source: string; dedupKey: string }, signal?: AbortSignal): Promise<ChannelAnswer>;
}

/** One notification sent (or attempted), newest first in GET /admin/alerts. */
export interface NotificationRecord {
  at: string;
  alert: string;
  severity: Severity;
  channel: string;
  action: NotifyAction;
  ok: boolean;
  status?: number;
  error?: string;
  summary: string;
}
