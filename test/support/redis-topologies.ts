import { execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './net.js';
import { launchRedis } from './redis-server.js';

/**
 * Redis Sentinel and Redis Cluster for one test file, built from `redis-server` children on
 * loopback (the same binary runs a sentinel with `--sentinel`), each in its own temp dir.
 */

const CLI = process.env.REDIS_CLI_BIN ?? 'redis-cli';

/** One redis-server (or sentinel) child. */
export interface RedisNode {
  port: number;
  /** `host:port`, as REDIS_SENTINELS and REDIS_CLUSTER_NODES take it. */
  address: string;
  readonly pid: number | null;
  /** SIGKILL, as in a crash. */
  stop(): Promise<void>;
}



function waitExit(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** `redis-cli -p PORT args…` with a deadline; resolves with stdout. */
export function redisCli(args: string[], timeoutMs = 15_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(CLI, args, { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`redis-cli ${args.join(' ')}: ${err.message}\n${stdout}${stderr}`));
      else resolve(stdout);
    });
  });
}

async function poll<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < until) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
}

/**
 * Starts `redis-server <args…> --port P` (args may start with a config file) on a free port
 * and resolves once it answers PING; retries on a few ports when a start fails.
 */
async function startNode(dir: string, args: (port: number) => string[]): Promise<RedisNode> {
  let output = '';
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const started = await launchRedis(args(port), port, dir);
    output = started.output;
    let child = started.proc;
    if (!child) continue;
    return {
      port,
      address: `127.0.0.1:${port}`,
      get pid() {
        return child?.pid ?? null;
      },
      async stop() {
        const p = child;
        child = null;
        if (!p) return;
        p.kill('SIGKILL');
        await waitExit(p);
      },
    };
  }
  throw new Error(`redis-server ${args(0).join(' ')} did not start:\n${output}`);
}

const BASE = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--protected-mode', 'no', '--loglevel', 'warning'];

/** A master, an optional replica and one sentinel watching them (quorum 1). */
export interface SentinelSetup {
  master: RedisNode;
  replica: RedisNode | null;
  sentinel: RedisNode;
  /** The master group name. */
  name: string;
  /** What the sentinel currently names as the master's port. */
  masterPort(): Promise<number>;
  /** Stops every process and removes the directories. */
  close(): Promise<void>;
}

/**
 * Starts a master (plus a replica when `replica` is set) and `redis-server sentinel.conf --sentinel`
 * monitoring it as `name`, with a short down-after so a failover takes a few seconds.
 */
export async function startSentinelSetup(options: { name?: string; replica?: boolean; downAfterMs?: number } = {}): Promise<SentinelSetup> {
  const name = options.name ?? 'mymaster';
  const dir = mkdtempSync(join(tmpdir(), 'wcagai-sentinel-'));
  const nodes: RedisNode[] = [];
  try {
    const master = await startNode(dir, (port) => ['--port', String(port), ...BASE, '--dir', dir, '--dbfilename', `m-${port}.rdb`]);
    nodes.push(master);
    let replica: RedisNode | null = null;
    if (options.replica) {
      replica = await startNode(dir, (port) => ['--port', String(port), ...BASE, '--dir', dir, '--dbfilename', `r-${port}.rdb`, '--replicaof', '127.0.0.1', String(master.port)]);
      nodes.push(replica);
      await poll('the replica to sync', 15_000, async () => ((await redisCli(['-p', String(replica!.port), 'INFO', 'replication'])).includes('master_link_status:up') ? true : undefined));
    }
    const sentinel = await startNode(dir, (port) => {
      // A sentinel rewrites its config file: one file per attempt, in the temp dir.
      const conf = join(dir, `sentinel-${port}.conf`);
      writeFileSync(
        conf,
        [
          `port ${port}`,
          'bind 127.0.0.1',
          'protected-mode no',
          'daemonize no',
          `dir ${dir}`,
          `sentinel monitor ${name} 127.0.0.1 ${master.port} 1`,
          `sentinel down-after-milliseconds ${name} ${options.downAfterMs ?? 1_000}`,
          `sentinel failover-timeout ${name} 10000`,
          `sentinel parallel-syncs ${name} 1`,
          '',
        ].join('\n'),
      );
      return [conf, '--sentinel', '--loglevel', 'warning'];
    });
    nodes.push(sentinel);
    const masterPort = async () => Number((await redisCli(['-p', String(sentinel.port), 'SENTINEL', 'get-master-addr-by-name', name])).trim().split('\n')[1]);
    // The sentinel knows the master once it answers with its address (and, with a replica, has seen it).
    await poll('the sentinel to know the master', 15_000, async () => {
      if ((await masterPort()) !== master.port) return undefined;
      if (replica && !(await redisCli(['-p', String(sentinel.port), 'SENTINEL', 'replicas', name])).includes(String(replica.port))) return undefined;
      return true;
    });
    return {
      master,
      replica,
      sentinel,
      name,
      masterPort,
      async close() {
        await Promise.all(nodes.map((n) => n.stop()));
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await Promise.all(nodes.map((n) => n.stop()));
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/** Masters of a Redis Cluster (no replicas). */
export interface ClusterSetup {
  nodes: RedisNode[];
  /** `host:port,host:port,…`, as REDIS_CLUSTER_NODES takes it. */
  seeds: string;
  close(): Promise<void>;
}

/** Starts `size` cluster-enabled servers, joins them with `redis-cli --cluster create` and waits for cluster_state:ok on each. */
export async function startCluster(size = 3): Promise<ClusterSetup> {
  const dir = mkdtempSync(join(tmpdir(), 'wcagai-cluster-'));
  const nodes: RedisNode[] = [];
  try {
    for (let i = 0; i < size; i++) {
      // The bus port is chosen too (the default, port + 10000, may be taken or past 65535).
      const bus = await freePort();
      nodes.push(
        await startNode(dir, (port) => [
          '--port',
          String(port),
          ...BASE,
          '--dir',
          dir,
          '--dbfilename',
          `c-${port}.rdb`,
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          `nodes-${port}.conf`,
          '--cluster-node-timeout',
          '3000',
          '--cluster-port',
          String(bus),
        ]),
      );
    }
    await redisCli(['--cluster', 'create', ...nodes.map((n) => n.address), '--cluster-replicas', '0', '--cluster-yes'], 30_000);
    for (const node of nodes) {
      await poll(`cluster_state:ok on ${node.address}`, 30_000, async () => ((await redisCli(['-p', String(node.port), 'CLUSTER', 'INFO'])).includes('cluster_state:ok') ? true : undefined));
    }
    return {
      nodes,
      seeds: nodes.map((n) => n.address).join(','),
      async close() {
        await Promise.all(nodes.map((n) => n.stop()));
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await Promise.all(nodes.map((n) => n.stop()));
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
