import { createConnection } from 'node:net';
import type { Keys } from '../../../src/queue/keys.js';

/** One quoted, escaped argument of a MONITOR line. */
const ARG = /"(?:[^"\\]|\\.)*"/g;

/** Every write of a final scan record that Redis executed, by scan id, in order. */
export interface ResultWrites {
  /** Scan id -> the JSON values written to its result key. */
  readonly byId: ReadonlyMap<string, readonly string[]>;
  /** Result-key writes seen in all. */
  readonly total: number;
  /** True once the watching connection dropped: writes may have been missed since. */
  readonly interrupted: boolean;
  stop(): Promise<void>;
}

/**
 * Watches the result keys through MONITOR, which reports every command Redis executes (those
 * inside MULTI and Lua scripts included) with its arguments. The store is the only writer of
 * `result:<id>` (ResultStore.putFinal), so this counts what was stored, not what a worker
 * said it stored: a worker killed between the write and its log line still shows up here.
 * The value is kept so that the same record written again (DLQ capture running in every
 * process may each write one failed record for a stalled scan) can be told from a second,
 * different result.
 */
export async function watchResultWrites(redisUrl: string, keys: Keys): Promise<ResultWrites> {
  const prefix = keys.result('');
  const byId = new Map<string, string[]>();
  let total = 0;
  let interrupted = false;
  let stopping = false;
  const { hostname, port } = new URL(redisUrl);
  const socket = createConnection({ host: hostname, port: Number(port) });
  socket.setEncoding('utf8');
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('error', reject);
  });
  // One line per command: +1700000000.123456 [0 127.0.0.1:5000] "set" "key" "value" ... with each
  // argument quoted and escaped. Keys are compared as printed; values are kept as printed, which
  // tells one record from another as well as the unescaped text would.
  let partial = '';
  socket.on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\r\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      const args = line.slice(line.indexOf('] ') + 2).match(ARG) ?? [];
      if (args.length < 3 || args[0]!.toLowerCase() !== '"set"' || !args[1]!.startsWith(`"${prefix}`)) continue;
      const id = args[1]!.slice(prefix.length + 1, -1);
      const list = byId.get(id) ?? [];
      list.push(args[2]!);
      byId.set(id, list);
      total++;
    }
  });
  socket.on('error', () => undefined);
  socket.on('close', () => {
    if (!stopping) interrupted = true;
  });
  socket.write('MONITOR\r\n');
  return {
    byId,
    get total() {
      return total;
    },
    get interrupted() {
      return interrupted;
    },
    async stop() {
      stopping = true;
      socket.destroy();
    },
  };
}

/** Distinct records written for one scan: more than one means a result was stored twice. */
export function distinctWrites(writes: ResultWrites, id: string): number {
  return new Set(writes.byId.get(id) ?? []).size;
}
