import type { AlertRuleName } from '../config/schema.js';
import type { Verdict } from './rules.js';
import type { Alert, AlertSettings, NotifyAction, Severity } from './types.js';

/** What the fleet remembers of one alert between evaluations (kept in Redis). */
export interface AlertRecord extends Alert {
  status: 'firing' | 'resolved';
  /** Epoch ms. */
  since: number;
  resolvedAt?: number;
  /** Last successful trigger per channel (epoch ms). */
  notified: Record<string, number>;
  /** Channels still owed a resolve. */
  pendingResolve?: string[];
  /**
   * Epoch ms: a firing alert whose condition cleared then; its resolve waits until it has stayed clear
   * for `resolveAfterMs`, and firing again meanwhile continues the same alert (cooldown included).
   */
  clearedAt?: number;
  /** Epoch ms: an operator silenced it until then (no trigger is sent meanwhile). */
  silencedUntil?: number;
}

export type AlertState = Record<string, AlertRecord>;

/** An operator's silence of one alert (by its id, e.g. `queue_depth`): no trigger is sent for it until `until`. */
export interface Silence {
  alert: string;
  /** Epoch ms. */
  until: number;
  createdAt: number;
  reason?: string;
}

/** Active silences by alert id. */
export type Silences = Record<string, Silence>;

export interface Send {
  channel: string;
  action: NotifyAction;
  alert: AlertRecord;
}

/** A resolve that cannot be delivered is given up after this long. */
export const RESOLVE_GIVE_UP_MS = 3_600_000;

/**
 * The next state and the notifications owed, given the previous state and this evaluation's
 * verdicts: a firing alert is sent to each channel that accepts its severity once, then again
 * only when its cooldown has passed since the last successful send; a cleared alert owes a
 * resolve to every channel that was sent its trigger. A silenced alert is still evaluated and
 * shown firing, but sends no trigger until its silence ends (then at once, if it still fires);
 * a trigger sent before the silence still gets its resolve. A cleared alert is resolved only once
 * it has stayed clear for `settings.resolveAfterMs` (hysteresis): one that fires again before then
 * is the same alert, its cooldown running on, so a flapping condition sends no trigger/resolve/trigger
 * series and never shows resolved on a channel while it is still coming and going.
 * Pure: `now` is a parameter.
 */
export function plan(
  previous: AlertState,
  verdicts: Map<AlertRuleName, Verdict>,
  now: number,
  settings: AlertSettings,
  channels: ReadonlyArray<{ channel: string; accepts(s: Severity): boolean }>,
  silences: Silences = {},
): { next: AlertState; sends: Send[] } {
  const next: AlertState = {};
  const sends: Send[] = [];
  for (const [rule, verdict] of verdicts) {
    const id = rule.toLowerCase();
    const prev = previous[id];
    if (verdict === 'unknown') {
      if (prev) next[id] = prev;
      continue;
    }
    if (verdict) {
      const record: AlertRecord = { ...verdict, status: 'firing', since: prev?.status === 'firing' ? prev.since : now, notified: prev?.status === 'firing' ? { ...prev.notified } : {} };
      next[id] = record;
      const silence = silences[id];
      if (silence && silence.until > now) {
        record.silencedUntil = silence.until;
        continue;
      }
      const cooldown = settings.rules[rule].cooldownMs;
      for (const c of channels) {
        if (!c.accepts(record.severity)) continue;
        const last = record.notified[c.channel];
        if (last === undefined || now - last >= cooldown) sends.push({ channel: c.channel, action: 'trigger', alert: record });
      }
      continue;
    }
    if (prev?.status === 'firing') {
      const owed = Object.keys(prev.notified);
      const clearedAt = prev.clearedAt ?? now;
      if (!owed.length) continue;
      if (now - clearedAt < settings.resolveAfterMs) next[id] = { ...prev, clearedAt };
      else {
        const { clearedAt: _held, ...rest } = prev;
        next[id] = { ...rest, status: 'resolved', resolvedAt: now, pendingResolve: owed };
      }
    } else if (prev?.status === 'resolved') next[id] = prev;
  }
  // Resolves still owed (new or from earlier evaluations), until delivered or given up.
  for (const [id, record] of Object.entries(next)) {
    if (record.status !== 'resolved') continue;
    if (!record.pendingResolve?.length || now - (record.resolvedAt ?? now) > RESOLVE_GIVE_UP_MS) {
      delete next[id];
      continue;
    }
    for (const channel of record.pendingResolve) sends.push({ channel, action: 'resolve', alert: record });
  }
  return { next, sends };
}

/** Applies the outcome of one send to the state. */
export function recordSend(state: AlertState, send: Send, ok: boolean, now: number): void {
  const record = state[send.alert.id];
  if (!record || !ok) return;
  if (send.action === 'trigger') record.notified[send.channel] = now;
  else {
    record.pendingResolve = (record.pendingResolve ?? []).filter((c) => c !== send.channel);
    if (record.pendingResolve.length === 0) delete state[send.alert.id];
  }
}
