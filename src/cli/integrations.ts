import { type Command, Option } from 'commander';
import { intFrom, repeat } from './parsers.js';

type SetExit = (code: 0 | 1) => void;

function server(command: Command): Command {
  return command
    .option('--url <url>', 'the server (default WCAGAI_URL)')
    .option('--token <token>', 'its admin token (default ADMIN_TOKEN)')
    .option('--json', 'print JSON');
}

/** `wcagai breakers …`, `wcagai queue …`, `wcagai alerts …`, `wcagai prospect`: command modules load only when they run. */
export function registerIntegrationCommands(program: Command, setExit: SetExit): void {
  const breakers = program.command('breakers').description("circuit breakers of the external services (ai, apollo, hubspot, slack, pagerduty), fleet-wide through a server's admin API");
  server(breakers.command('list').description("the answering process's breakers and every worker's")).action(async (opts) => {
    const { runBreakersList } = await import('../commands/breakers.js');
    setExit((await runBreakersList(opts)) as 0 | 1);
  });
  for (const action of ['reset', 'isolate'] as const) {
    server(
      breakers
        .command(action)
        .description(action === 'reset' ? 'close a breaker in every process (ends an isolation)' : 'hold a breaker open in every process until reset')
        .argument('<name>', 'ai, apollo, hubspot, slack or pagerduty'),
    ).action(async (name: string, opts) => {
      const { runBreakerAction } = await import('../commands/breakers.js');
      setExit((await runBreakerAction(action, name, opts)) as 0 | 1);
    });
  }

  const queue = program.command('queue').description("the scan queue, fleet-wide through a server's admin API: status, pause, resume");
  server(queue.command('status').description('running or paused, job counts, admission capacity')).action(async (opts) => {
    const { runQueueStatus } = await import('../commands/queue.js');
    setExit((await runQueueStatus(opts)) as 0 | 1);
  });
  for (const action of ['pause', 'resume'] as const) {
    server(queue.command(action).description(action === 'pause' ? 'workers finish the scans they hold and take no new ones (submissions still queue)' : 'workers take scans again')).action(async (opts) => {
      const { runQueueAction } = await import('../commands/queue.js');
      setExit((await runQueueAction(action, opts)) as 0 | 1);
    });
  }

  const alerts = program.command('alerts').description('alerts and their notifications (Slack, PagerDuty): list, silence, unsilence, test');
  server(alerts.command('list').description("firing alerts, silences and the last notifications, fleet-wide through a server's admin API")).action(async (opts) => {
    const { runAlertsList } = await import('../commands/alert-admin.js');
    setExit((await runAlertsList(opts)) as 0 | 1);
  });
  server(
    alerts
      .command('silence')
      .description('send no notification for an alert until a time has passed (it is still evaluated and shown)')
      .argument('<alert>', 'error_rate, queue_depth, queue_utilization, breaker_open, dlq_growth, rss or workers_missing')
      .requiredOption('--for <duration>', 'how long, 1m to 30d (30m, 2h, 1d)')
      .option('--reason <text>', 'why, shown with the silence'),
  ).action(async (alert: string, opts) => {
    const { runAlertSilence } = await import('../commands/alert-admin.js');
    setExit((await runAlertSilence(alert, opts)) as 0 | 1);
  });
  server(alerts.command('unsilence').description("lift an alert's silence: notifications resume at once if it fires").argument('<alert>', 'the alert silenced')).action(async (alert: string, opts) => {
    const { runAlertUnsilence } = await import('../commands/alert-admin.js');
    setExit((await runAlertUnsilence(alert, opts)) as 0 | 1);
  });
  alerts
    .command('test')
    .description('send a test alert to every configured channel and print what each answered')
    .addOption(new Option('--severity <severity>', 'severity of the test alert').choices(['info', 'warning', 'error', 'critical']).default('warning'))
    .option('--json', 'print JSON')
    .action(async (opts) => {
      const { runAlertsTest } = await import('../commands/alerts.js');
      setExit((await runAlertsTest(opts)) as 0 | 1);
    });

  program
    .command('prospect')
    .description('find company websites with Apollo and queue their scans as one batch')
    .requiredOption('--query <keywords>', 'keywords describing the companies (comma-separated)')
    .option('--industry <name>', 'an industry (repeatable)', repeat('--industry'))
    .option('--location <place>', 'a headquarters location such as "Berlin, Germany" (repeatable)', repeat('--location'))
    .option('--limit <n>', 'at most this many companies (1-1000)', intFrom('--limit', 1, 1_000), 25)
    .addOption(new Option('--level <level>', 'WCAG conformance level').choices(['A', 'AA', 'AAA']).default('AA'))
    .addOption(new Option('--wcag <version>', 'WCAG version').choices(['2.0', '2.1', '2.2']).default('2.2'))
    .option('--url <url>', 'queue through this server (default WCAGAI_URL; without either, straight into Redis at REDIS_URL)')
    .option('--api-key <key>', 'API key for --url (default the first of API_KEYS)')
    .option('--dry-run', 'print the websites found, queue nothing')
    .option('--json', 'print JSON')
    .action(async (opts) => {
      const { runProspect } = await import('../commands/prospect.js');
      setExit((await runProspect(opts)) as 0 | 1);
    });
}
