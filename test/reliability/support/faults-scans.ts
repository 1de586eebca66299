import { sleep, type Call, type HttpLedger } from './faults-http.js';

/** One scan a scenario submitted and, once it finished, its final record. */
export interface ScanTrack {
  url: string;
  /** The submission call (its request id is the one the scan's log lines and AI calls carry). */
  submit: Call;
  /** Set when the submission was accepted (200 or 202 with an id). */
  id?: string;
  /** The last record read: `status` completed or failed once finished. */
  view?: Record<string, any>;
}

export const isFinal = (view: Record<string, any> | undefined): boolean => view?.status === 'completed' || view?.status === 'failed';

/**
 * Submits a scan with `Prefer: wait` and, when the wait ends first (202), polls its record until
 * it finishes or `deadlineMs` passes. Never throws: the track says how far it got.
 */
export async function scanAndWait(http: HttpLedger, url: string, options: { waitS?: number; deadlineMs?: number; signal?: AbortSignal } = {}): Promise<ScanTrack> {
  const waitS = options.waitS ?? 60;
  const until = Date.now() + (options.deadlineMs ?? 180_000);
  const submit = await http.post('/api/scans', { url }, { headers: { prefer: `wait=${waitS}` }, timeoutMs: (waitS + 30) * 1_000 });
  const track: ScanTrack = { url, submit };
  if ((submit.status !== 200 && submit.status !== 202) || typeof submit.json?.id !== 'string') return track;
  track.id = submit.json.id as string;
  track.view = submit.json;
  await pollUntilFinal(http, track, until, options.signal);
  return track;
}

/** Polls GET /api/scans/:id until the record is final or `until` passes (or `signal` aborts). */
export async function pollUntilFinal(http: HttpLedger, track: ScanTrack, until: number, signal?: AbortSignal): Promise<void> {
  for (let i = 0; i < 10_000 && !isFinal(track.view) && Date.now() < until && !signal?.aborted; i++) {
    await sleep(500, signal);
    const res = await http.get(`/api/scans/${track.id}`, { timeoutMs: 15_000 });
    if (res.status === 200) track.view = res.json;
  }
}

/**
 * `clients` loops run `step` back to back (a closed loop: load follows the service's pace, so
 * the queue cannot grow without bound) until `signal` aborts or `maxSteps` steps ran in all.
 */
export async function closedLoop(clients: number, signal: AbortSignal, maxSteps: number, step: (client: number) => Promise<unknown>): Promise<number> {
  let steps = 0;
  await Promise.all(
    Array.from({ length: clients }, async (_, client) => {
      while (!signal.aborted && steps < maxSteps) {
        steps++;
        await step(client);
      }
    }),
  );
  return steps;
}

/** A URL of the fixture site made unique, so no answer comes from the result cache or deduplication. */
export function uniqueUrl(origin: string, path: string, tag: string): string {
  const url = new URL(path, origin);
  url.searchParams.set('run', tag);
  return url.href;
}
