/**
 * The log destination of serve, worker and LOG_FILE (logDestination): lines handed to it in a
 * burst, most of them while an earlier write is still in flight, reach the file whole, in order and
 * with their multi-byte characters intact, and nothing is left behind when the stream ends.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { logDestination } from '../../src/observability/logger.js';

const dir = mkdtempSync(join(tmpdir(), 'wcagai-logdest-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('logDestination', () => {
  it('writes a burst of lines whole and in order, multi-byte characters included', async () => {
    const file = join(dir, 'burst.log');
    const stream = logDestination(file);
    const logger = pino({ base: null, timestamp: false }, stream);
    const lines = 20_000;
    // Lines of several sizes, so chunks fill up to sonic-boom's write size at odd byte counts.
    for (let i = 0; i < lines; i++) logger.info({ i, note: 'é💥漢'.repeat(i % 50) }, `line ${i} ✓`);
    // end() closes the file once every pending chunk is written ('close').
    await new Promise<void>((resolve, reject) => {
      stream.once('close', resolve);
      stream.once('error', reject);
      stream.end();
    });
    const text = readFileSync(file, 'utf8');
    expect(text.endsWith('\n')).toBe(true);
    const read = text.trimEnd().split('\n').map((l) => JSON.parse(l) as { i: number; note: string; msg: string });
    expect(read).toHaveLength(lines);
    read.forEach((line, i) => {
      expect(line.i).toBe(i);
      expect(line.msg).toBe(`line ${i} ✓`);
      expect(line.note).toBe('é💥漢'.repeat(i % 50));
    });
  });
});
