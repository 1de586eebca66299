import type { JsonResponse, TestService } from '../../support/service.js';

/** Answers a well-behaved client tries again: the server is momentarily overloaded or full. */
const TRY_AGAIN = new Set(['OVERLOADED', 'QUEUE_FULL']);

export interface Submitted {
  /** Scan ids in the order of the URLs. */
  ids: string[];
  /** Submissions answered 503 OVERLOADED or QUEUE_FULL and sent again. */
  retried: number;
  /** The answer that was neither a 202 nor worth another try, if any. */
  refused?: JsonResponse;
}

/**
 * POSTs every URL to /api/scans, `parallel` at a time, as a client honouring 503 would: an
 * OVERLOADED or QUEUE_FULL answer (on a machine shared with other jobs, event-loop pressure can
 * trip) is sent again after a short pause, at most `maxTries` times. Stops at the first other
 * non-202 answer and returns it.
 */
export async function submitAll(api: TestService, urls: readonly string[], options: { parallel?: number; maxTries?: number } = {}): Promise<Submitted> {
  const ids: string[] = new Array(urls.length);
  const out: Submitted = { ids, retried: 0 };
  let next = 0;
  const client = async () => {
    while (next < urls.length && !out.refused) {
      const i = next++;
      for (let attempt = 1; ; attempt++) {
        const res = await api.post('/api/scans', { url: urls[i] });
        if (res.status === 202) {
          ids[i] = res.json.id as string;
          break;
        }
        if (res.status !== 503 || !TRY_AGAIN.has(res.json?.code) || attempt >= (options.maxTries ?? 20)) {
          out.refused = res;
          return;
        }
        out.retried++;
        await new Promise((r) => setTimeout(r, Math.min(500 * attempt, 3_000)));
      }
    }
  };
  await Promise.all(Array.from({ length: options.parallel ?? 4 }, client));
  return out;
}
