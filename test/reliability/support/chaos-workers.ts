import type { WorkerProcess } from '../../queue/worker-process.js';

/**
 * Waits until `worker` has logged `worker.start` (its browser launched and its pages warm). On a
 * timeout the error carries the worker's last log lines and stderr, so a slow start can be told
 * from a stuck one.
 */
export async function waitStarted(worker: WorkerProcess, timeoutMs: number): Promise<void> {
  try {
    await worker.waitForLog((e) => e.event === 'worker.start', timeoutMs);
  } catch (err) {
    const tail = worker.logs.slice(-8).map((e) => `${String(e.time ?? '')} ${String(e.event ?? '')} ${String(e.msg ?? '')}`);
    const exit = worker.child.exitCode ?? worker.child.signalCode;
    throw new Error(`worker ${worker.pid} did not start within ${timeoutMs} ms${exit !== null ? ` (exited: ${exit})` : ''}; last log lines:\n${tail.join('\n') || '(none)'}\nstderr: ${worker.stderr.slice(-1_000) || '(none)'}`, { cause: err });
  }
}
