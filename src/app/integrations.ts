import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { AlertManager } from '../alerts/manager.js';
import { alertSettingsOf } from '../alerts/settings.js';
import { SEVERITIES, type Figures, type Notifier } from '../alerts/types.js';
import { AiClient } from '../clients/ai.js';
import { ApolloClient } from '../clients/apollo.js';
import { BreakerFleet } from '../clients/fleet.js';
import { SERVICE_NAMES, type ServiceName } from '../clients/http.js';
import { HubSpotClient } from '../clients/hubspot.js';
import { PagerDutyNotifier } from '../clients/pagerduty.js';
import { DEFAULT_POLICY, ServicePolicy, type PolicySettings } from '../clients/policies.js';
import { BreakerRegistry, type BreakerSnapshot, type BreakerState } from '../clients/registry.js';
import { SlackNotifier } from '../clients/slack.js';
import type { Config, ServicePrefix } from '../config/schema.js';
import { breakerStateAt } from '../domain/snapshot.js';
import { WcagaiError } from '../errors/catalogue.js';
import { alertRoutes } from '../http/routes/alerts.js';
import { breakerHealthSection, breakerRoutes, type RemoteBreakers } from '../http/routes/breakers.js';
import type { HealthSection } from '../http/routes/health.js';
import { BREAKER_STATE, type Metrics } from '../observability/metrics.js';
import { listProcesses, type ProcessHeartbeat } from '../queue/heartbeat.js';
import { createScanHooks, type ScanHooks } from '../queue/hooks.js';
import type { Keys } from '../queue/keys.js';
import { OutcomeCounter } from '../queue/outcomes.js';
import type { Capacity } from '../queue/producer.js';
import { settleWithin, type RedisClient } from '../queue/redis.js';

/**
 * One service's policy settings from <PREFIX>_TIMEOUT, _ATTEMPTS, _BACKOFF, _BREAKER_FAILURES, _BREAKER_HALF_OPEN,
 * _CONCURRENCY; HubSpot's calls are also rate limited (`ratePerSecond` from HUBSPOT_RATE_PER_SECOND).
 */
export function policySettingsOf(config: Config, prefix: ServicePrefix): PolicySettings {
  const concurrency = config[`${prefix}_CONCURRENCY`];
  return {
    ...DEFAULT_POLICY,
    timeoutMs: config[`${prefix}_TIMEOUT`],
    attempts: config[`${prefix}_ATTEMPTS`],
    backoffMs: config[`${prefix}_BACKOFF`],
    breakerFailures: config[`${prefix}_BREAKER_FAILURES`],
    halfOpenAfterMs: config[`${prefix}_BREAKER_HALF_OPEN`],
    concurrency,
    queue: concurrency * 25,
    ...(prefix === 'HUBSPOT' && config.HUBSPOT_RATE_PER_SECOND > 0 ? { ratePerSecond: config.HUBSPOT_RATE_PER_SECOND } : {}),
  };
}

/** Every client the configuration enables, each behind its policy; all five breakers are always registered. */
export interface Clients {
  registry: BreakerRegistry;
  policies: Record<ServiceName, ServicePolicy>;
  ai: AiClient | null;
  apollo: ApolloClient | null;
  hubspot: HubSpotClient | null;
  notifiers: Notifier[];
}

export function buildClients(config: Config, logger?: Logger): Clients {
  const registry = new BreakerRegistry();
  const policies = Object.fromEntries(
    SERVICE_NAMES.map((name) => {
      const policy = new ServicePolicy(name, policySettingsOf(config, name.toUpperCase() as ServicePrefix), logger);
      registry.add(policy.breaker);
      return [name, policy];
    }),
  ) as Record<ServiceName, ServicePolicy>;
  const notifiers: Notifier[] = [];
  if (config.SLACK_WEBHOOK_URL) notifiers.push(new SlackNotifier(policies.slack, config.SLACK_WEBHOOK_URL));
  if (config.PAGERDUTY_ROUTING_KEY) notifiers.push(new PagerDutyNotifier(policies.pagerduty, { eventsUrl: config.PAGERDUTY_EVENTS_URL, routingKey: config.PAGERDUTY_ROUTING_KEY }));
  return {
    registry,
    policies,
    ai: config.AI_ENABLED
      ? new AiClient(policies.ai, { baseUrl: config.AI_BASE_URL, apiKey: config.AI_API_KEY, model: config.AI_MODEL, maxTokens: config.AI_MAX_TOKENS, maxRules: config.AI_MAX_RULES })
      : null,
    apollo: config.APOLLO_API_KEY ? new ApolloClient(policies.apollo, { baseUrl: config.APOLLO_BASE_URL, apiKey: config.APOLLO_API_KEY }) : null,
    hubspot: config.HUBSPOT_TOKEN ? new HubSpotClient(policies.hubspot, { baseUrl: config.HUBSPOT_BASE_URL, token: config.HUBSPOT_TOKEN }) : null,
    notifiers,
  };
}

/** Where alerts say they come from: the public URL's host, else this machine. */
export function alertSourceOf(config: Config): string {
  return config.WCAGAI_URL ? new URL(config.WCAGAI_URL).host : hostname();
}

export interface IntegrationOptions {
  redis: RedisClient;
  /** A dedicated connection for the breaker control channel (owned and closed here). */
  subscriber: RedisClient;
  keys: Keys;
  /** Queue figures of the deployment. */
  capacity(): Promise<Capacity>;
  /** DLQ figures, when the process has a DLQ. */
  dlqFigures?: () => Promise<{ size: number; lastHourAdded: number }>;
  /** Whether this process runs a scan worker (`worker`) or serves the API alone (`api`). */
  role: 'api' | 'worker';
}

/** The integrations of one service process: clients, breakers across the fleet, scan hooks and alerts. */
export interface Integrations {
  processId: string;
  clients: Clients;
  fleet: BreakerFleet;
  alerts: AlertManager | null;
  outcomes: OutcomeCounter;
  hooks: ScanHooks;
  healthSection: HealthSection;
  routes(app: FastifyInstance): void;
  /** Breakers for this process's heartbeat (a worker's, or an API process's). */
  heartbeatExtra(): Record<string, unknown>;
  /**
   * The breakers of every live worker process, from their heartbeats, as gauge values
   * (`wcagai_worker_circuit_breaker_state`). API processes, and this process's embedded worker, are
   * left out: each API process exports its own in `wcagai_circuit_breaker_state` on its /metrics.
   */
  workerBreakerStates(): Promise<Array<{ process: string; service: string; state: number }>>;
  /** Starts evaluating alerts. */
  start(): void;
  close(): Promise<void>;
}

/**
 * One breaker as of `now`: OPEN past its half-open duration reads HALF_OPEN (another process's
 * heartbeat is up to an interval old, and a process of an older version reports OPEN until a call
 * arrives). A heartbeat without `trialInFlight` (an older version) reporting HALF_OPEN is in its trial.
 */
function breakerAsOf<T extends ReportedBreaker>(s: T, now: number): T & { state: BreakerState; trialInFlight: boolean } {
  const state = breakerStateAt(s, now) as BreakerState;
  return { ...s, state, trialInFlight: state === 'HALF_OPEN' && (s.trialInFlight ?? s.state === 'HALF_OPEN') };
}

/** A breaker as a heartbeat reports it: one of an older version has no `trialInFlight`. */
type ReportedBreaker = { state: string; trialInFlight?: boolean; openedAt?: string | null; halfOpenAfterMs?: number };

function remoteBreakers(value: unknown, now = Date.now()): Record<string, BreakerSnapshot> | null {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return null;
  return Object.fromEntries(Object.entries(value as Record<string, BreakerSnapshot>).map(([name, s]) => [name, s && typeof s === 'object' ? breakerAsOf(s, now) : s]));
}

/** The `breakers` figure of the alert rules for one process's breakers (this process's, or a heartbeat's), as of `now`. */
export function alertBreakers(process: string, breakers: Record<string, ReportedBreaker>, now = Date.now()): NonNullable<Figures['breakers']> {
  return Object.entries(breakers).map(([name, s]) => {
    const b = breakerAsOf(s, now);
    return { name, state: b.state, trialInFlight: b.trialInFlight, process };
  });
}

/** Builds and connects the integrations; `close` stops alerts first, then leaves the control channel. */
export async function startIntegrations(config: Config, logger: Logger, options: IntegrationOptions): Promise<Integrations> {
  const { redis, keys, subscriber } = options;
  subscriber.on('error', (err) => logger.debug({ event: 'redis.error', err: err.message }, 'breaker control redis error'));
  const processId = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const clients = buildClients(config, logger);
  const { registry } = clients;
  registry.onChange((c) => logger.warn({ event: 'breaker.state', breaker: c.name, from: c.from, to: c.to, cause: c.cause }, `circuit breaker ${c.name}: ${c.from} -> ${c.to}`));
  let fleet: BreakerFleet;
  try {
    if (config.HUBSPOT_SYNC && !config.HUBSPOT_TOKEN) throw new WcagaiError('USAGE', 'HUBSPOT_SYNC=true needs HUBSPOT_TOKEN');
    fleet = await BreakerFleet.connect(registry, {
      publisher: redis,
      subscriber,
      channel: `${keys.bullPrefix}:breakers:control`,
      isolatedKey: `${keys.bullPrefix}:breakers:isolated`,
      origin: processId,
      logger,
    });
  } catch (err) {
    subscriber.disconnect();
    throw err;
  }
  const outcomes = new OutcomeCounter(redis, keys);
  const hooks = createScanHooks({ ai: clients.ai, hubspot: config.HUBSPOT_SYNC ? clients.hubspot : null, publicUrl: config.WCAGAI_URL });

  // Every other live process: workers, and API processes. This process's own heartbeat, or its
  // embedded worker's (an id of its own, carrying this process's id), is left out: its breakers and
  // memory are read here directly, and counting them from the heartbeat too would list them twice.
  // Not by host and pid: containers that share a host name each run as pid 1.
  const isSelf = (hb: ProcessHeartbeat) => hb.id === processId || hb.processId === processId;
  const others = async (): Promise<ProcessHeartbeat[]> => (await listProcesses(redis, keys)).filter((hb) => !isSelf(hb));
  const fleetBreakers = async (): Promise<RemoteBreakers[]> =>
    (await others()).flatMap((hb) => {
      const breakers = remoteBreakers(hb.breakers);
      return breakers ? [{ process: hb.id, role: hb.role, host: hb.host, pid: hb.pid, at: hb.at, breakers }] : [];
    });

  const figures = async (): Promise<Figures> => {
    const [capacity, scans, processes, dlq] = await Promise.allSettled([options.capacity(), outcomes.window(config.ALERT_ERROR_RATE_WINDOW), listProcesses(redis, keys), options.dlqFigures?.()]);
    const own = alertBreakers(processId, registry.snapshot());
    const self = { id: processId, rssBytes: process.memoryUsage().rss };
    const f: Figures = { breakers: own, processes: [self] };
    if (capacity.status === 'fulfilled') {
      const c = capacity.value;
      f.queue = { waiting: c.waiting, active: c.active, utilizationPercent: c.utilizationPercent, maxCapacity: c.maxCapacity };
    }
    if (scans.status === 'fulfilled') f.scans = scans.value;
    if (dlq.status === 'fulfilled' && dlq.value) f.dlq = { size: dlq.value.size, lastHourAdded: dlq.value.lastHourAdded };
    if (processes.status === 'fulfilled') {
      // Scan workers only: an API process runs no scans, and must not make a fleet without workers look healthy.
      // This process's embedded worker counts: it runs scans.
      f.workers = processes.value.filter((hb) => hb.role === 'worker').length;
      for (const hb of processes.value) {
        if (isSelf(hb)) continue;
        // Already as of now (remoteBreakers): pushed as they are, not adjusted a second time.
        for (const [name, s] of Object.entries(remoteBreakers(hb.breakers) ?? {})) f.breakers!.push({ name, state: s.state, trialInFlight: s.trialInFlight, process: hb.id });
        f.processes!.push({ id: hb.id, rssBytes: hb.memory.rss });
      }
    }
    return f;
  };

  const alerts = config.ALERTS_ENABLED
    ? new AlertManager({
        redis,
        keyPrefix: `${keys.bullPrefix}:alerts`,
        settings: alertSettingsOf(config),
        figures,
        notifiers: clients.notifiers,
        logger,
        intervalMs: config.ALERTS_INTERVAL,
        origin: processId,
        source: alertSourceOf(config),
        dedupPrefix: `wcagai/${config.QUEUE_PREFIX}`,
      })
    : null;

  let closed: Promise<void> | null = null;
  return {
    processId,
    clients,
    fleet,
    alerts,
    outcomes,
    hooks,
    healthSection: breakerHealthSection(registry),
    routes(app) {
      breakerRoutes({ registry, fleet, processId, role: options.role, fleetBreakers })(app);
      if (alerts) alertRoutes(alerts)(app);
    },
    // `processId` ties an embedded worker's heartbeat (an id of its own) to the process it runs in.
    heartbeatExtra: () => ({ breakers: registry.snapshot(), processId }),
    workerBreakerStates: async () =>
      (await fleetBreakers()).filter((p) => p.role === 'worker').flatMap((w) => Object.entries(w.breakers).map(([service, b]) => ({ process: w.process, service, state: BREAKER_STATE[GAUGE_STATE[b.state]] ?? 0 }))),
    start: () => alerts?.start(),
    close() {
      closed ??= (async () => {
        await alerts?.stop();
        // Bounded: with Redis down, the subscriber's commands would wait for a reconnection forever.
        await settleWithin(fleet.close(), 1_000);
        await settleWithin(subscriber.quit(), 1_000);
        subscriber.disconnect();
      })();
      return closed;
    },
  };
}

const GAUGE_STATE: Record<BreakerState, keyof typeof BREAKER_STATE> = { CLOSED: 'closed', HALF_OPEN: 'half-open', OPEN: 'open', ISOLATED: 'isolated' };

/** Keeps `wcagai_circuit_breaker_state{service}` and `wcagai_alerts_firing{severity}` current; returns a disposer. */
export function bindIntegrationGauges(metrics: Metrics, registry: BreakerRegistry, alerts: AlertManager | null): () => void {
  const setBreaker = (name: string, state: BreakerState) => metrics.circuitBreakerState.set({ service: name }, BREAKER_STATE[GAUGE_STATE[state]]);
  for (const [name, s] of Object.entries(registry.snapshot())) setBreaker(name, s.state);
  const offBreakers = registry.onChange((c) => setBreaker(c.name, c.to));
  const setAlerts = () => {
    const counts = alerts?.firingBySeverity();
    for (const severity of SEVERITIES) metrics.alertsFiring.set({ severity }, counts?.[severity] ?? 0);
  };
  setAlerts();
  const offAlerts = alerts?.onFiring(setAlerts);
  return () => {
    offBreakers();
    offAlerts?.();
  };
}
