import { randomBytes } from 'node:crypto';

/**
 * Random ids for scans, requests, batches and DLQ entries: `bytes` random bytes in base64url.
 * The bytes come from the system's CSPRNG in blocks of POOL_BYTES: one `randomBytes` call per id
 * cost the API about a tenth of its submission throughput (a synchronous call into the CSPRNG for
 * a dozen bytes), as much as the queue add itself.
 */
const POOL_BYTES = 4_096;
let pool = Buffer.alloc(0);
let offset = 0;

export function randomId(prefix: string, bytes: number): string {
  if (offset + bytes > pool.length) {
    pool = randomBytes(Math.max(POOL_BYTES, bytes));
    offset = 0;
  }
  const id = pool.toString('base64url', offset, offset + bytes);
  offset += bytes;
  return `${prefix}${id}`;
}
