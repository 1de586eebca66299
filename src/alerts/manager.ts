import type { Cluster, Redis } from 'ioredis';
import type { Logger } from 'pino';
import { evaluateRules } from './rules.js';
import { ALERT_RULES } from '../config/schema.js';
import { WcagaiError } from '../errors/catalogue.js';
import { plan, recordSend, type AlertRecord, type AlertState, type Send, type Silence, type Silences } from './state.js';
import { SEVERITIES, type AlertSettings, type Figures, type NotificationRecord, type Notifier, type Severity } from './types.js';

export interface AlertManagerOptions {
  redis: Redis | Cluster;
  /** Prefix of the manager's keys, e.g. `{wcagai}:alerts`. */
  keyPrefix: string;
  settings: AlertSettings;
  /** Reads the deployment's live figures; a figure it cannot read it leaves out. */
  figures(): Promise<Figures>;
  notifiers: readonly Notifier[];
  logger: Logger;
  intervalMs: number;
  /** This process's id (holder of the evaluation lock). */
  origin: string;
  /** `source` of PagerDuty events and the name Slack messages show. */
  source: string;
  /** Stable part of PagerDuty dedup keys: one deployment's alert is one incident. */
  dedupPrefix: string;
  /** Notifications kept for GET /admin/alerts. */
  keepNotifications?: number;
  /** Expiry of the evaluation lock, renewed every third of it while an evaluation runs (default max(intervalMs, 60 s)). */
  lockTtlMs?: number;
  now?(): number;
}

/** Extends the lock's expiry to `ARGV[2]` ms only while `ARGV[1]` still holds it. */
const HOLD_SCRIPT = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end`;

/**
 * Saves an evaluation: the state (KEYS[2] = ARGV[2]) only while ARGV[1] still holds the lock KEYS[1],
 * so an evaluator that lost it cannot overwrite a newer evaluator's state; the notifications
 * (ARGV[4…], pushed to KEYS[3], trimmed to ARGV[3]) are history and are kept either way. 1 if saved.
 */
const SAVE_SCRIPT = `
local held = redis.call('GET', KEYS[1]) == ARGV[1]
if held then redis.call('SET', KEYS[2], ARGV[2]) end
if #ARGV > 3 then
  for i = 4, #ARGV do redis.call('LPUSH', KEYS[3], ARGV[i]) end
  redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[3]) - 1)
end
if held then return 1 else return 0 end`;

/**
 * Evaluates the alert rules every `intervalMs` and notifies. Every process runs one; a short
 * Redis lock per evaluation lets one of them evaluate and notify, and the alert state lives in
 * Redis, so the fleet sends each notification once whichever process evaluates.
 */
export class AlertManager {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> | null = null;
  private readonly controller = new AbortController();
  private firing: AlertRecord[] = [];
  private readonly listeners = new Set<(firing: readonly AlertRecord[]) => void>();
  private readonly keys: { lock: string; state: string; notifications: string; silences: string };

  constructor(private readonly options: AlertManagerOptions) {
    this.keys = { lock: `${options.keyPrefix}:lock`, state: `${options.keyPrefix}:state`, notifications: `${options.keyPrefix}:notifications`, silences: `${options.keyPrefix}:silences` };
  }

  private now(): number {
    return this.options.now?.() ?? Date.now();
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.tick(), this.options.intervalMs);
    this.timer.unref();
    void this.tick();
  }

  /** Stops evaluating; waits for a running evaluation (its notifier calls are cancelled). */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.controller.abort();
    await this.running?.catch(() => undefined);
  }

  private tick(): Promise<unknown> {
    if (this.running || this.controller.signal.aborted) return this.running ?? Promise.resolve();
    this.running = this.evaluateOnce()
      .catch((err: unknown) => this.options.logger.warn({ event: 'alerts.error', err: (err as Error).message }, 'alert evaluation failed'))
      .finally(() => {
        this.running = null;
      });
    return this.running;
  }

  /** One evaluation if this process wins the lock; resolves to whether it did. Refreshes the local view either way. */
  async evaluateOnce(): Promise<boolean> {
    const { redis, intervalMs, origin } = this.options;
    const started = this.now();
    // The lock is renewed while the evaluation runs (notifier timeouts and retries can outlast it),
    // then cut back to the interval. Losing it (Redis unreachable past its expiry) cancels the sends
    // still running, and the state is saved only while the lock is still ours.
    const ttl = this.options.lockTtlMs ?? Math.max(intervalMs, 60_000);
    const got = await redis.set(this.keys.lock, origin, 'PX', ttl, 'NX');
    if (got !== 'OK') {
      this.setFiring(await this.load());
      return false;
    }
    const evaluation = new AbortController();
    const stopped = () => evaluation.abort();
    this.controller.signal.addEventListener('abort', stopped, { once: true });
    const lost = () => {
      if (evaluation.signal.aborted) return;
      this.options.logger.warn({ event: 'alerts.lock_lost' }, 'alert evaluation lock lost: notifications still running are cancelled and the state is not saved');
      evaluation.abort();
    };
    const renew = setInterval(() => {
      redis.eval(HOLD_SCRIPT, 1, this.keys.lock, origin, String(ttl)).then(
        (held) => {
          if (held !== 1) lost();
        },
        () => undefined, // Redis unreachable for now: the next renewal (or the save) finds out.
      );
    }, Math.max(1, Math.floor(ttl / 3)));
    renew.unref();
    try {
      const [state, silences] = await Promise.all([this.load(), this.silences()]);
      const figures = await this.options.figures();
      const verdicts = evaluateRules(figures, this.options.settings);
      const { next, sends } = plan(state, verdicts, this.now(), this.options.settings, this.options.notifiers, silences);
      const records = await Promise.all(sends.map((s) => this.deliver(s, next, evaluation.signal)));
      clearInterval(renew);
      if (await this.save(next, records)) this.setFiring(next);
      else {
        lost();
        this.setFiring(await this.load());
      }
    } finally {
      clearInterval(renew);
      this.controller.signal.removeEventListener('abort', stopped);
      const left = Math.max(1, intervalMs - (this.now() - started) - 50);
      await redis.eval(HOLD_SCRIPT, 1, this.keys.lock, origin, String(left)).catch(() => undefined);
    }
    return true;
  }

  private async deliver(send: Send, state: AlertState, signal: AbortSignal): Promise<NotificationRecord> {
    const notifier = this.options.notifiers.find((n) => n.channel === send.channel);
    const base = { at: new Date(this.now()).toISOString(), alert: send.alert.id, severity: send.alert.severity, channel: send.channel, action: send.action, summary: send.alert.summary };
    if (!notifier) return { ...base, ok: false, error: 'channel no longer configured' };
    try {
      const answer = await notifier.send(send.alert, send.action, { source: this.options.source, dedupKey: `${this.options.dedupPrefix}/${send.alert.id}` }, signal);
      recordSend(state, send, true, this.now());
      this.options.logger.info({ event: 'alerts.notified', alert: send.alert.id, channel: send.channel, action: send.action, status: answer.status }, `alert ${send.alert.id}: ${send.action} sent to ${send.channel}`);
      return { ...base, ok: true, status: answer.status };
    } catch (err) {
      const e = err as Error & { code?: string };
      this.options.logger.warn({ event: 'alerts.notify_failed', alert: send.alert.id, channel: send.channel, action: send.action, code: e.code }, `alert ${send.alert.id}: ${send.action} to ${send.channel} failed: ${e.message}`);
      return { ...base, ok: false, error: `${e.code ?? e.name}: ${e.message}` };
    }
  }

  /**
   * Silences `id` (an alert rule's id, e.g. `queue_depth`) fleet-wide for `durationMs`: it is still
   * evaluated and shown, but no trigger is sent until the silence ends or is lifted. A second
   * silence of the same alert replaces the first.
   */
  async silence(id: string, durationMs: number, reason?: string): Promise<Silence> {
    const alert = knownAlert(id);
    const now = this.now();
    const silence: Silence = { alert, until: now + durationMs, createdAt: now, ...(reason ? { reason } : {}) };
    await this.options.redis.hset(this.keys.silences, alert, JSON.stringify(silence));
    this.options.logger.info({ event: 'alerts.silenced', alert, until: new Date(silence.until).toISOString(), reason }, `alert ${alert} silenced until ${new Date(silence.until).toISOString()}`);
    return silence;
  }

  /** Lifts the silence of `id`; `removed` is false when it had none. */
  async unsilence(id: string): Promise<{ alert: string; removed: boolean }> {
    const alert = knownAlert(id);
    const removed = (await this.options.redis.hdel(this.keys.silences, alert)) > 0;
    if (removed) this.options.logger.info({ event: 'alerts.unsilenced', alert }, `alert ${alert}: silence lifted`);
    return { alert, removed };
  }

  /**
   * Silences still in force. An ended one stays in Redis until the alert is silenced again (one
   * field per rule at most): deleting it here could race with an operator's new silence.
   */
  async silences(): Promise<Silences> {
    const raw = await this.options.redis.hgetall(this.keys.silences);
    const now = this.now();
    const active: Silences = {};
    for (const [id, json] of Object.entries(raw)) {
      let silence: Silence;
      try {
        silence = JSON.parse(json) as Silence;
      } catch {
        continue; // not written by wcagai: no silence
      }
      if (typeof silence.until === 'number' && silence.until > now) active[id] = silence;
    }
    return active;
  }

  private async load(): Promise<AlertState> {
    const raw = await this.options.redis.get(this.keys.state);
    return raw ? (JSON.parse(raw) as AlertState) : {};
  }

  /** Saves the state if this process still holds the lock (and the notifications either way); whether it did. */
  private async save(state: AlertState, records: NotificationRecord[]): Promise<boolean> {
    const { lock, state: stateKey, notifications } = this.keys;
    const keep = String(this.options.keepNotifications ?? 200);
    const saved = await this.options.redis.eval(SAVE_SCRIPT, 3, lock, stateKey, notifications, this.options.origin, JSON.stringify(state), keep, ...records.map((r) => JSON.stringify(r)));
    return saved === 1;
  }

  private setFiring(state: AlertState): void {
    this.firing = Object.values(state).filter((r) => r.status === 'firing');
    for (const l of this.listeners) l(this.firing);
  }

  /** Alerts firing fleet-wide as of this process's last look. */
  firingNow(): readonly AlertRecord[] {
    return this.firing;
  }

  /** Firing alerts by severity (every severity present), for the `wcagai_alerts_firing` gauge. */
  firingBySeverity(): Record<Severity, number> {
    const out = Object.fromEntries(SEVERITIES.map((s) => [s, 0])) as Record<Severity, number>;
    for (const r of this.firing) out[r.severity]++;
    return out;
  }

  /** Called after each look at the state; returns a disposer. */
  onFiring(listener: (firing: readonly AlertRecord[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Firing alerts (a silenced one with `silencedUntil`, from the silences as they are now), resolves
   * still owed, silences in force and the newest notifications, as GET /admin/alerts shows them.
   */
  async view(limit = 50): Promise<{ firing: AlertRecord[]; resolving: AlertRecord[]; silences: Silence[]; notifications: NotificationRecord[] }> {
    const [state, silences, raws] = await Promise.all([this.load(), this.silences(), this.options.redis.lrange(this.keys.notifications, 0, limit - 1)]);
    const all = Object.values(state);
    const withSilence = (r: AlertRecord): AlertRecord => {
      const { silencedUntil: _stale, ...rest } = r;
      const silence = silences[r.id];
      return silence ? { ...rest, silencedUntil: silence.until } : rest;
    };
    return {
      firing: all.filter((r) => r.status === 'firing').map(withSilence),
      resolving: all.filter((r) => r.status === 'resolved'),
      silences: Object.values(silences),
      notifications: raws.map((r) => JSON.parse(r) as NotificationRecord),
    };
  }
}

/** The ids alerts have: their rules' names in lower case. */
export const ALERT_IDS: readonly string[] = ALERT_RULES.map((r) => r.toLowerCase());

function knownAlert(id: string): string {
  const alert = id.toLowerCase();
  if (!ALERT_IDS.includes(alert)) throw new WcagaiError('NOT_FOUND', `no alert named "${id.slice(0, 40)}": one of ${ALERT_IDS.join(', ')}`);
  return alert;
}
