import { type Command, Option } from 'commander';
import { list, nonEmpty, nonNegativeInt, positiveInt, timerMs } from './parsers.js';

type SetExit = (code: 0 | 1 | 2 | 99) => void;


/** `wcagai stress` and `wcagai leak`: their modules load only when they run. */
export function registerDiagnosticsCommands(program: Command, setExit: SetExit): void {
  program
    .command('stress')
    .description('load-test the scan service with a scenario (default 100-concurrent-scans); exit 99 when a threshold fails')
    .option('--scenario <file>', 'scenario file, or the name of a shipped one (100-concurrent-scans, enqueue-burst, soak, spike)')
    .option('--concurrent <n>', "connections (replaces the scenario's)", positiveInt('--concurrent'))
    .addOption(new Option('--duration <duration>', "load duration such as 60s or 10m (replaces the scenario's)").conflicts('amount'))
    .option('--amount <n>', 'stop after this many requests instead of a duration', positiveInt('--amount'))
    .option('--url <url>', 'drive this deployment instead of a self-contained stack on loopback')
    .option('--token <token>', 'API key for --url, sent as Authorization: Bearer')
    .option('--json', 'print the result as JSON')
    .option('--out <file>', 'also write the JSON result to this file', nonEmpty('--out', 'a file name'))
    .action(async (opts) => {
      const { runStressCommand } = await import('../commands/stress.js');
      setExit(await runStressCommand(opts));
    });

  program
    .command('leak')
    .description('scan in-process for many cycles and judge post-GC memory growth; exit 99 on a leak')
    .option('--concurrent <n>', 'scans at once in each cycle', positiveInt('--concurrent'), 10)
    .option('--cycles <n>', 'rounds of concurrent scans', positiveInt('--cycles'), 100)
    .option('--pages <n>', 'Chromium pages open at once; scans beyond them wait for a free page (default: twice the CPUs, at least 2, at most --concurrent)', positiveInt('--pages'))
    .option('--url <url>', 'scan these pages instead of the fixture site (repeatable, or comma-separated)', list('--url', 'page URLs'))
    .option('--max-growth <size>', 'post-GC heap growth that fails the run', '50MB')
    .option('--tolerance <size>', 'a significant upward trend fails when it projects past this over the run', '5MB')
    .option('--warmup <n>', 'cycles before the baseline sample (default a tenth of the run, 1-50)', nonNegativeInt('--warmup'))
    .option('--max-duration <duration>', 'stop after this long whatever --cycles says (the result tells how many ran)', '1h')
    .option('--timeout <ms>', 'overall deadline per page in ms, as wcagai scan (default 60000; navigation and axe 30000 each)', timerMs('--timeout'))
    .option('--heap-snapshots <dir>', 'write a first and a last heap snapshot here (open them in DevTools)', nonEmpty('--heap-snapshots', 'a directory'))
    .option('--report <file>', 'write an HTML report with the chart', nonEmpty('--report', 'a file name'))
    .option('--json', 'print the result as JSON')
    .action(async (opts) => {
      const { runLeakCommand } = await import('../commands/leak.js');
      setExit(await runLeakCommand(opts));
    });
}
