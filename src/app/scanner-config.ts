import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { ScannerConfig } from '../scanner/engine.js';
import type { TargetPolicy } from '../scanner/types.js';
import { createCachingResolver, defaultResolver } from '../scanner/target-guard.js';

/** The target policy of the server and worker: private targets refused unless configured. */
export function policyOf(config: Config): TargetPolicy {
  return { allowPrivate: config.ALLOW_PRIVATE_TARGETS, allowedHosts: config.SCAN_ALLOWED_HOSTS, resolve: createCachingResolver(defaultResolver, 5_000) };
}

/** Scan engine settings from the validated configuration. */
export function scannerConfigOf(config: Config, concurrency: number, logger: Logger, env: Record<string, string | undefined>): ScannerConfig {
  return {
    concurrency,
    contextMode: config.BROWSER_CONTEXTS,
    env,
    navigationTimeoutMs: config.NAVIGATION_TIMEOUT,
    settleQuietMs: config.SETTLE_QUIET,
    settleMaxMs: config.SETTLE_MAX,
    axeTimeoutMs: config.AXE_TIMEOUT,
    scanTimeoutMs: config.SCAN_TIMEOUT,
    maxScansPerBrowser: config.BROWSER_MAX_SCANS,
    maxBrowserRssBytes: config.BROWSER_MAX_RSS_MB * 2 ** 20,
    gcHeapBytes: config.BROWSER_GC_HEAP_MB * 2 ** 20,
    policy: policyOf(config),
    logger,
  };
}
