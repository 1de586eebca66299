import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { maskUrl } from '../config/secrets.js';
import { ConfigError, loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { startFixtureSite, type FixtureSite } from '../diagnostics/fixture-site.js';
import { DEFAULT_SCENARIO, loadScenario, type Scenario } from '../diagnostics/scenario.js';
import { runStress, type ProgressStream, type StressTarget } from '../diagnostics/stress.js';
import type { StressResult } from '../diagnostics/stress-report.js';
import { isWcagaiError, WcagaiError } from '../errors/catalogue.js';
import { createLogger } from '../observability/logger.js';
import { keysFor } from '../queue/keys.js';
import { keyHolders, producerConnection, redisTargetOf, waitReady, type RedisTarget } from '../queue/redis.js';
import { processTreeRss } from '../scanner/browser.js';
import { startService, type Service } from './service.js';

export interface StressFlags {
  scenario?: string;
  concurrent?: number;
  duration?: string;
  amount?: number;
  url?: string;
  token?: string;
}

/** Warnings and errors the self-contained stack logged, kept for the report (nothing reaches stdout). */
class LogTally {
  warnings = 0;
  errors = 0;
  readonly last: string[] = [];

  write(line: string): void {
    for (const part of line.split('\n')) {
      if (!part.trim()) continue;
      let level = 0;
      let msg = part;
      try {
        const entry = JSON.parse(part) as { level?: number; msg?: string; event?: string };
        level = entry.level ?? 0;
        msg = `${entry.event ?? ''} ${entry.msg ?? ''}`.trim();
      } catch {
        // not JSON: kept as is
      }
      if (level >= 50) this.errors++;
      else if (level >= 40) this.warnings++;
      if (level >= 50) {
        this.last.push(msg.slice(0, 200));
        if (this.last.length > 5) this.last.shift();
      }
    }
  }
}

/**
 * Deletes every key of a private prefix (SCAN + UNLINK on every server that holds keys: each
 * master of a Cluster); returns how many were removed and how many remain.
 */
export async function removePrefix(target: RedisTarget | string, prefix: string): Promise<{ removed: number; left: number }> {
  const { pattern } = keysFor(prefix);
  const redis = producerConnection(target, { commandTimeout: 10_000, enableOfflineQueue: true });
  redis.on('error', () => undefined);
  let removed = 0;
  try {
    await waitReady(redis, 10_000);
    const count = async (node: Redis, unlink: boolean): Promise<number> => {
      let n = 0;
      let cursor = '0';
      let rounds = 0;
      // Bounded: a prefix holds at most a few hundred thousand keys in any run this tool makes.
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1_000);
        cursor = next;
        // One UNLINK per batch is safe on a Cluster node: every key of a prefix shares its hash tag (one slot).
        n += unlink ? (keys.length ? await node.unlink(...keys) : 0) : keys.length;
      } while (cursor !== '0' && ++rounds < 100_000);
      return n;
    };
    for (let pass = 0; pass < 3; pass++) for (const node of keyHolders(redis)) removed += await count(node, true);
    let left = 0;
    for (const node of keyHolders(redis)) left += await count(node, false);
    return { removed, left };
  } finally {
    await redis.quit().catch(() => redis.disconnect());
  }
}

interface SelfStack {
  target: StressTarget;
  info: Record<string, unknown>;
  close(): Promise<void>;
}

/** Settings of the self-contained stack: the operator's environment, then the scenario's, then what isolation needs. */
function stackConfig(scenario: Scenario, prefix: string): Config {
  return loadConfig(process.env, {
    LOG_LEVEL: 'warn',
    ...scenario.stack.settings,
    QUEUE_PREFIX: prefix,
    ALLOW_PRIVATE_TARGETS: 'true',
    RATE_LIMIT_MAX: '0',
    // The stack is private to this run: no key is needed to reach it.
    API_KEYS: '',
    LOG_FILE: '',
    LOG_PRETTY: 'false',
  });
}

/**
 * The stack's settings, checked before anything starts: a bad value of the scenario's
 * `stack.settings` is named by its file and field, on one line (the environment's own by its variable).
 */
function checkStackConfig(scenario: Scenario): void {
  try {
    stackConfig(scenario, 'stress-check');
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const problems = err.problems.map((p) => {
      const key = /^[A-Z][A-Z0-9_]*/.exec(p)?.[0];
      return key !== undefined && Object.hasOwn(scenario.stack.settings, key) ? `${scenario.file}: stack.settings.${p}` : `invalid configuration: ${p}`;
    });
    throw new WcagaiError('USAGE', problems.join('; '));
  }
}

/** Fixture site + `serve` with embedded workers on loopback, under a private queue prefix removed on close. */
async function startSelfStack(scenario: Scenario, site: FixtureSite): Promise<SelfStack> {
  const prefix = `stress-${randomBytes(5).toString('hex')}`;
  const config = stackConfig(scenario, prefix);
  const tally = new LogTally();
  const logger: Logger = createLogger({ level: config.LOG_LEVEL, destination: tally });
  const workers = scenario.stack.workers ?? config.WORKER_CONCURRENCY;
  let service: Service;
  try {
    service = await startService(config, logger, { api: true, workerConcurrency: workers, env: process.env });
  } catch (err) {
    await removePrefix(redisTargetOf(config), prefix).catch(() => undefined);
    const message = err instanceof Error ? err.message : String(err);
    if (isWcagaiError(err)) throw err;
    throw new WcagaiError('REDIS_UNAVAILABLE', `cannot start the self-contained stack: ${message.split('\n')[0]}`);
  }
  let baseUrl: string;
  try {
    baseUrl = await service.app!.listen({ port: 0, host: '127.0.0.1' });
  } catch (err) {
    await service.close(5_000).catch(() => undefined);
    await removePrefix(redisTargetOf(config), prefix).catch(() => undefined);
    throw err;
  }
  const info: Record<string, unknown> = { prefix, workers, maxQueueDepth: config.MAX_QUEUE_DEPTH, baseUrl, siteOrigin: site.origin };
  return {
    target: {
      label: 'self',
      baseUrl,
      siteOrigin: site.origin,
      chromiumRss: () => {
        const pid = service.scanner?.stats().browserPid ?? null;
        return pid === null ? null : processTreeRss(pid);
      },
    },
    info,
    async close() {
      try {
        await service.close(10_000);
      } finally {
        // The private prefix goes whatever the close met: a stress run never leaves keys behind.
        const keys = await removePrefix(redisTargetOf(config), prefix);
        Object.assign(info, { removedKeys: keys.removed, keysLeft: keys.left, logWarnings: tally.warnings, logErrors: tally.errors, lastErrors: tally.last });
      }
    },
  };
}

/** `wcagai stress`: the scenario (flags applied), the target (self-contained stack or --url), one run. */
export async function stressFromFlags(flags: StressFlags, progress: ProgressStream | null): Promise<StressResult> {
  // Checked here: the scenario's schema would blame its own `target` field for a value the flag gave.
  if (flags.url !== undefined && !/^https?:\/\/[^/?#@]+\/?$/i.test(flags.url)) {
    throw new WcagaiError('USAGE', `--url expects the base URL of a deployment with no path and no user:password@ (the key goes in --token), such as https://wcagai.internal, got "${maskUrl(flags.url, '***')}"`);
  }
  const scenario = await loadScenario(flags.scenario ?? DEFAULT_SCENARIO, {
    ...(flags.concurrent !== undefined ? { connections: flags.concurrent } : {}),
    ...(flags.duration !== undefined ? { duration: flags.duration } : {}),
    ...(flags.amount !== undefined ? { amount: flags.amount } : {}),
    ...(flags.url !== undefined ? { target: flags.url } : {}),
  });
  // The self-contained stack has no API keys: a token for it would be ignored in silence.
  if (flags.token !== undefined && scenario.target === 'self') throw new WcagaiError('USAGE', '--token applies to a target URL (--url, or the scenario\'s target), not to the self-contained stack');
  if (scenario.target === 'self') checkStackConfig(scenario);
  const needsSite = scenario.pages.some((p) => p.url.startsWith('/'));
  const site = needsSite || scenario.target === 'self' ? await startFixtureSite() : null;
  let stack: SelfStack | null = null;
  const abort = new AbortController();
  // Kept until the stack is closed and its prefix removed: a second Ctrl-C (or SIGTERM) while
  // that runs must not end the process and leave the private keys behind in a shared Redis.
  let cleaning = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (!abort.signal.aborted) abort.abort(signal);
    else if (stack && !cleaning) {
      cleaning = true;
      process.stderr.write(`wcagai stress: stopping; removing the private queue prefix ${String(stack.info.prefix)} first\n`);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    let target: StressTarget;
    if (scenario.target === 'self') {
      stack = await startSelfStack(scenario, site!);
      target = stack.target;
    } else {
      target = { label: scenario.target, baseUrl: scenario.target, siteOrigin: site?.origin ?? null, ...(flags.token ? { token: flags.token } : {}) };
    }
    const result = await runStress({ scenario, target, progress, signal: abort.signal });
    if (stack) {
      await stack.close();
      result.stack = stack.info;
      stack = null;
    }
    return result;
  } finally {
    try {
      await stack?.close().catch(() => undefined);
      await site?.close();
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  }
}
