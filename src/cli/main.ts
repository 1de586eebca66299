import { Command, CommanderError, Option } from 'commander';
import { DEFAULT_VIEWPORT } from '../domain/scan.js';
import { toolInfo } from '../domain/version.js';
import { registerDiagnosticsCommands } from './diagnostics.js';
import { registerDlqCommands } from './dlq.js';
import { registerIntegrationCommands } from './integrations.js';
import { exitCodeFor, formatError } from './errors.js';
import { list, nonEmpty, once, portNumber, positiveInt, repeat, timerMs, viewportSize } from './parsers.js';

import type { ExitCode } from '../commands/exit-codes.js';

export type { ExitCode };

/**
 * Builds the program. Command modules are imported only when their command runs, so
 * `wcagai --help` never loads Chromium, Redis or React.
 */
export function buildProgram(setExit: (code: ExitCode) => void): Command {
  // Whether ALLOW_PRIVATE_TARGETS came from the environment rather than .env: a scan's refusal says which to change.
  let allowPrivateInEnvironment = false;
  const program = new Command('wcagai')
    .description('WCAG accessibility scanning service and operator toolkit')
    .version(toolInfo().version, '-V, --version')
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({ outputError: (str, write) => write(str.replace(/^error: /, 'wcagai: ')) })
    // `scan` reads BROWSER_CONTEXTS through its flag's environment default, which is taken while
    // the flags are parsed: .env is read before that, or its BROWSER_CONTEXTS would be ignored.
    .hook('preSubcommand', async (_program, subcommand) => {
      if (subcommand.name() !== 'scan') return;
      allowPrivateInEnvironment = process.env.ALLOW_PRIVATE_TARGETS !== undefined;
      const { loadDotEnv } = await import('../config/dotenv.js');
      try {
        loadDotEnv();
      } catch {
        // An unreadable .env is reported by the scan itself, in one line; `scan --help` still answers.
      }
    });

  program
    .command('scan')
    .description('scan pages now and write a report (needs no Redis)')
    .argument('[urls...]', 'pages to scan')
    .option('--urls-file <file>', 'read URLs from a file, one a line')
    .option('--sitemap <url>', 'scan the pages a sitemap (or sitemap index) lists')
    .option('--limit <n>', 'at most this many pages from the sitemap', positiveInt('--limit'))
    .option('--concurrency <n>', 'pages scanned at once', positiveInt('--concurrency'), 4)
    .addOption(new Option('--level <level>', 'WCAG conformance level').choices(['A', 'AA', 'AAA']).default('AA'))
    .addOption(new Option('--wcag <version>', 'WCAG version').choices(['2.0', '2.1', '2.2']).default('2.2'))
    .option('--best-practice', 'also run axe-core best-practice rules', false)
    .option('--rules <ids>', 'run only these axe rule ids (comma-separated)', list('--rules', 'axe rule ids'))
    .option('--disable-rules <ids>', 'skip these axe rule ids (comma-separated)', list('--disable-rules', 'axe rule ids'))
    .option('--include <selector>', 'limit the scan to this CSS selector (repeatable; a comma is part of the selector)', repeat('--include'))
    .option('--exclude <selector>', 'leave out this CSS selector (repeatable; a comma is part of the selector)', repeat('--exclude'))
    .option('--viewport <size>', `browser window WIDTHxHEIGHT in CSS pixels, e.g. 375x667 for a phone (default ${DEFAULT_VIEWPORT.width}x${DEFAULT_VIEWPORT.height})`, viewportSize)
    .addOption(once(new Option('--format <format>', 'report format (default: pretty on a terminal, json otherwise; with several --output files, each takes the format its name asks for)').choices(['pretty', 'json', 'junit', 'sarif', 'html', 'csv'])))
    .option('-o, --output <file>', 'write the report to a file instead of stdout, - for stdout (repeatable: one scan, several reports)', repeat('--output', 'a file name'))
    .addOption(new Option('--fail-on <impact>', 'exit 2 when a violation at or above this impact is found').choices(['minor', 'moderate', 'serious', 'critical']).default('minor'))
    .option('--baseline <file>', 'an earlier JSON report: classify findings new/fixed/persisting and gate on new ones only', nonEmpty('--baseline', 'a file name'))
    .option('--timeout <ms>', 'overall deadline per page in ms (at most 24 days)', timerMs('--timeout'))
    .option('--header <header>', 'send "Name: value" with requests to each scanned page\'s own origin, e.g. a staging token (repeatable)', (value: string, previous: string[] = []) => [...previous, value])
    .option('--no-allow-private', 'refuse private and loopback targets (allowed by default for local scans)')
    .addOption(
      new Option('--browser-contexts <mode>', 'shared: one browser context, cleared after each scan; per-slot: one per page, so concurrent scans share nothing either')
        .choices(['shared', 'per-slot'])
        .env('BROWSER_CONTEXTS')
        .default('shared'),
    )
    .action(async (urls: string[], opts: Record<string, unknown>, command: Command) => {
      // A flag wins over a setting: --no-allow-private refuses private targets even when
      // ALLOW_PRIVATE_TARGETS=true is in the environment or .env (a variable already set is not
      // replaced by .env, and the target policy reads this one).
      if (command.getOptionValueSource('allowPrivate') === 'cli') process.env.ALLOW_PRIVATE_TARGETS = 'false';
      const { runScanCommand } = await import('../commands/scan.js');
      setExit(await runScanCommand(urls, opts, { allowPrivateInEnvironment }));
    });

  program
    .command('serve')
    .description('run the scan API, with an embedded worker unless --no-worker')
    .option('--port <port>', 'port to listen on (default PORT or 8080)', portNumber('--port'))
    .option('--host <host>', 'address to bind (default HOST or 127.0.0.1)')
    .option('--workers <n>', 'scan concurrency of the embedded worker (default WORKER_CONCURRENCY)', positiveInt('--workers'))
    .option('--no-worker', 'API only: scans run in separate `wcagai worker` processes')
    .action(async (opts: { port?: number; host?: string; workers?: number; worker: boolean }) => {
      const { runServe } = await import('../commands/serve.js');
      setExit((await runServe(opts)) as ExitCode);
    });

  program
    .command('worker')
    .description('run scan workers against the queue at REDIS_URL')
    .option('--concurrency <n>', 'scans at once (default WORKER_CONCURRENCY)', positiveInt('--concurrency'))
    .option('--health-port <port>', 'serve /health/live, /health/ready, /health and /health/detailed on this port (default WORKER_HEALTH_PORT; none when unset)', portNumber('--health-port'))
    .action(async (opts: { concurrency?: number; healthPort?: number }) => {
      const { runWorker } = await import('../commands/worker.js');
      setExit((await runWorker(opts)) as ExitCode);
    });

  program
    .command('config')
    .description('configuration tools')
    .command('check')
    .description('validate the environment (and .env) and print the effective configuration, secrets masked')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const { runConfigCheck } = await import('../commands/config.js');
      setExit(runConfigCheck(opts) as ExitCode);
    });

  program
    .command('top')
    .description('live dashboard of a running server: queue, breakers, workers, DLQ and alerts, with operator actions')
    .option('--url <url>', 'the server (default WCAGAI_URL or http://127.0.0.1:8080)')
    .option('--token <token>', 'its admin token (default ADMIN_TOKEN)')
    .option('--once', 'print one snapshot and exit (no terminal needed)')
    .option('--json', 'print one snapshot as JSON and exit (implies --once)')
    .action(async (opts: { url?: string; token?: string; once?: boolean; json?: boolean }) => {
      const { runTop } = await import('../commands/top.js');
      setExit((await runTop(opts)) as ExitCode);
    });

  registerDlqCommands(program, setExit);
  registerDiagnosticsCommands(program, setExit);
  registerIntegrationCommands(program, setExit);

  return program;
}

/** Runs the CLI with `argv` and resolves to the process exit code; never throws. */
export async function main(argv: readonly string[]): Promise<ExitCode> {
  let code: ExitCode = 0;
  const program = buildProgram((c) => {
    code = c;
  });
  try {
    await program.parseAsync(argv as string[]);
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version exit 0; usage errors were already printed as one line. A command named
      // without its subcommand (`wcagai dlq`) prints the help as an error: exit 1.
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return 0;
      if (err.code === 'commander.help') return err.exitCode === 0 ? 0 : 1;
      if (err.code === 'wcagai.usage' || err.exitCode !== 0) {
        if (err.code === 'wcagai.usage') process.stderr.write(`wcagai: ${err.message}\n`);
        return 1;
      }
      return 0;
    }
    process.stderr.write(`${formatError(err)}\n`);
    return exitCodeFor(err);
  }
}
