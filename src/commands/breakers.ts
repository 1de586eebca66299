import type { BreakerSnapshot } from '../clients/registry.js';
import { adminApi, type AdminFlags } from './admin-api.js';

export type BreakerFlags = AdminFlags;

type Role = 'api' | 'worker';

interface BreakerList {
  /** `role` is absent from servers before roles. */
  process: { id: string; role?: Role; breakers: Record<string, BreakerSnapshot> };
  workers: Array<{ process: string; role?: Role; at?: string; breakers: Record<string, BreakerSnapshot> }>;
  /** The other processes serving the API without a worker; absent from servers before roles. */
  apiProcesses?: Array<{ process: string; role?: Role; at?: string; breakers: Record<string, BreakerSnapshot> }>;
}

interface ActionAnswer {
  action: 'reset' | 'isolate';
  name: string;
  breaker: BreakerSnapshot;
  reached: number;
}

const print = (text: string) => process.stdout.write(text);

/** The breakers as a table: one row per process and service; ROLE says whether the process runs scans (worker) or serves the API alone (api). */
export function breakerTable(list: BreakerList): string {
  const rows: string[][] = [['PROCESS', 'ROLE', 'SERVICE', 'STATE', 'FAILURES', 'LAST FAILURE', 'OPENED AT']];
  const add = (proc: string, role: string, breakers: Record<string, BreakerSnapshot>) => {
    for (const [name, s] of Object.entries(breakers)) rows.push([proc, role, name, s.state, String(s.failures), s.lastFailureAt ?? '-', s.openedAt ?? '-']);
  };
  add(`${list.process.id} (answered)`, list.process.role ?? '-', list.process.breakers);
  for (const w of list.workers) add(w.process, 'worker', w.breakers);
  for (const a of list.apiProcesses ?? []) add(a.process, 'api', a.breakers);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return `${rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n')}\n`;
}

/** `wcagai breakers list`: the answering process's breakers and every other process's, workers' and API processes' (from heartbeats). */
export async function runBreakersList(flags: BreakerFlags): Promise<number> {
  const list = await adminApi(flags).call<BreakerList>('GET', '/admin/breakers');
  print(flags.json ? `${JSON.stringify(list, null, 2)}\n` : breakerTable(list));
  return 0;
}

/** `wcagai breakers reset|isolate <name>`: applied by the answering process and published to the fleet. */
export async function runBreakerAction(action: 'reset' | 'isolate', name: string, flags: BreakerFlags): Promise<number> {
  const answer = await adminApi(flags).call<ActionAnswer>('POST', `/admin/breakers/${encodeURIComponent(name)}/${action}`);
  if (flags.json) print(`${JSON.stringify(answer, null, 2)}\n`);
  else print(`circuit breaker ${answer.name}: ${action === 'reset' ? 'reset' : 'isolated'}, now ${answer.breaker.state}; reached ${answer.reached} other process(es)\n`);
  return 0;
}
