import { writeFile } from 'node:fs/promises';
import { stressFromFlags, type StressFlags } from '../app/stress.js';
import { stressTable } from '../diagnostics/stress-report.js';
import { WcagaiError } from '../errors/catalogue.js';
import { checkOutputFile } from './output-file.js';

export interface StressCommandFlags extends StressFlags {
  json?: boolean;
  out?: string;
}

/**
 * `wcagai stress`: 0 when every threshold holds, 99 when one fails (1 on a tool error, thrown).
 * A run cut short by a signal prints its figures and exits 1: thresholds over the part that ran
 * (with no wait for recovery) are no verdict either way.
 */
export async function runStressCommand(flags: StressCommandFlags): Promise<0 | 1 | 99> {
  if (flags.out !== undefined) checkOutputFile(flags.out, '--out');
  const result = await stressFromFlags(flags, process.stderr);
  const json = `${JSON.stringify(result, null, 2)}\n`;
  if (flags.out !== undefined) {
    await writeFile(flags.out, json).catch((err: NodeJS.ErrnoException) => {
      throw new WcagaiError('USAGE', `cannot write ${flags.out}: ${err.code ?? err.message}`);
    });
  }
  process.stdout.write(flags.json ? json : stressTable(result));
  if (result.interrupted) {
    process.stderr.write(`wcagai stress: interrupted by ${result.interrupted} after ${(result.durationMs / 1_000).toFixed(1)} s of load: no verdict\n`);
    return 1;
  }
  return result.passed ? 0 : 99;
}
