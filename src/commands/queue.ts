import type { QueueFigures } from '../domain/snapshot.js';
import { adminApi, type AdminFlags } from './admin-api.js';

const print = (text: string) => process.stdout.write(text);

/** The queue's figures as `wcagai queue status` prints them. */
export function queueStatusText(q: QueueFigures): string {
  return [
    `queue: ${q.paused ? 'paused (workers finish their scans, take no new ones)' : 'running'}`,
    `jobs: ${q.waiting} waiting, ${q.active} active, ${q.delayed} delayed, ${q.failed} failed, ${q.completed} completed (kept)`,
    `capacity: ${q.waiting + q.active} of ${q.maxCapacity} (${q.utilizationPercent} %), ${q.state}`,
  ].join('\n');
}

/** `wcagai queue status`: paused or running, job counts and admission capacity, as Redis has them now. */
export async function runQueueStatus(flags: AdminFlags): Promise<number> {
  const queue = await adminApi(flags).call<QueueFigures>('GET', '/admin/queue');
  print(flags.json ? `${JSON.stringify(queue, null, 2)}\n` : `${queueStatusText(queue)}\n`);
  return 0;
}

/** `wcagai queue pause|resume`: fleet-wide (the queue's state lives in Redis); scans are still accepted while paused. */
export async function runQueueAction(action: 'pause' | 'resume', flags: AdminFlags): Promise<number> {
  const answer = await adminApi(flags).call<{ paused: boolean }>('POST', `/admin/queue/${action}`);
  if (flags.json) print(`${JSON.stringify(answer)}\n`);
  else print(answer.paused ? 'queue paused: workers finish the scans they hold and take no new ones; submissions still queue\n' : 'queue resumed: workers take scans again\n');
  return 0;
}
