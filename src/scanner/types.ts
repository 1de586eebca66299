import type { PageResult, ScanOptions } from '../domain/scan.js';

/** Resolves a host name to its IP addresses (injectable so tests can model DNS answers). */
export type Resolver = (hostname: string) => Promise<string[]>;

/** Which targets a scan may reach. */
export interface TargetPolicy {
  /** Allow private, loopback, link-local, unique-local and metadata addresses. */
  allowPrivate: boolean;
  /** Hosts (name or IP, optionally host:port) always allowed, even when private. */
  allowedHosts: readonly string[];
  resolve: Resolver;
}

export interface ScanRequestOptions {
  signal?: AbortSignal;
  /**
   * Extra HTTP request headers (an auth token for a staging site, a preview cookie), sent only with
   * requests to the scanned URL's own origin: third-party hosts the page loads never see them.
   */
  headers?: Readonly<Record<string, string>>;
}

/** The scan engine seen from outside: a warm pool that turns a URL into a page result. */
export interface Scanner {
  scan(url: string, options: ScanOptions, request?: ScanRequestOptions): Promise<PageResult>;
  stats(): ScannerStats;
  close(): Promise<void>;
}

export interface ScannerStats {
  concurrency: number;
  active: number;
  scansDone: number;
  browserRestarts: number;
  browserPid: number | null;
  /** The browser is up and connected (false after a crash until it is relaunched); left out, a pid counts as up. */
  browserConnected?: boolean;
  /** Shared browser contexts retired because a scan in them failed or could not be cleaned. */
  contextsRetired?: number;
  /** Pages garbage-collected between scans because their heap passed the limit (engine only). */
  heapCollections?: number;
}
