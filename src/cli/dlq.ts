import { type Command, CommanderError } from 'commander';
import { ERROR_CODE_PATTERN, isHostFilter } from '../domain/dlq.js';
import { intFrom } from './parsers.js';

type SetExit = (code: 0 | 1) => void;

/** An error code as the DLQ keeps them (HTTP_SERVER_ERROR): another spelling would match nothing, in silence. */
const errorCode = (value: string) => {
  if (!ERROR_CODE_PATTERN.test(value)) throw new CommanderError(1, 'wcagai.usage', `--code expects an error code such as HTTP_SERVER_ERROR, got "${value}"`);
  return value;
};

/**
 * A host as the DLQ keeps them (`shop.example.com`, `host:port`): a URL or a path would match
 * nothing, in silence (`retry --host https://shop.example.com/` retried none).
 */
const hostName = (value: string) => {
  if (!isHostFilter(value)) throw new CommanderError(1, 'wcagai.usage', `--host expects a host such as shop.example.com or host:port (not a URL), got "${value}"`);
  return value;
};

/** --url/--token (a server) or neither (Redis at REDIS_URL), and --json. */
function target(command: Command): Command {
  return command
    .option('--url <url>', 'use the admin API of this server instead of Redis (default WCAGAI_URL)')
    .option('--token <token>', 'admin token for --url (default ADMIN_TOKEN)')
    .option('--json', 'print JSON');
}

const load = () => import('../commands/dlq.js');

/** `wcagai dlq …`: the command module loads only when a subcommand runs. */
export function registerDlqCommands(program: Command, setExit: SetExit): void {
  const dlq = program
    .command('dlq')
    .description('dead-letter queue: scans that failed for good, their failure patterns, replay and purge (Redis at REDIS_URL, or a server with --url)');

  target(dlq.command('list').description('list entries, newest first'))
    .option('--code <code>', 'only this error code', errorCode)
    .option('--host <host>', 'only this target host', hostName)
    .option('--limit <n>', 'at most this many entries (1-1000)', intFrom('--limit', 1, 1_000), 20)
    .option('--cursor <cursor>', 'continue after a previous page')
    .action(async (opts) => setExit((await (await load()).runDlqList(opts)) as 0 | 1));

  target(dlq.command('show').description('one entry with every attempt and retry').argument('<id>', 'DLQ entry id (dlq_…)')).action(async (id: string, opts) =>
    setExit((await (await load()).runDlqShow(id, opts)) as 0 | 1),
  );

  target(dlq.command('stats').description('failure patterns: totals by error code, host and day')).action(async (opts) => setExit((await (await load()).runDlqStats(opts)) as 0 | 1));

  target(dlq.command('retry').description('replay one entry, or every entry of a filter').argument('[id]', 'DLQ entry id (dlq_…)'))
    .option('--all', 'every entry')
    .option('--code <code>', 'every entry with this error code', errorCode)
    .option('--host <host>', 'every entry for this host', hostName)
    .option('-y, --yes', 'do not ask before a bulk retry')
    .action(async (id: string | undefined, opts) => setExit((await (await load()).runDlqRetry(id, opts)) as 0 | 1));

  target(dlq.command('delete').description('remove one entry without replaying it').argument('<id>', 'DLQ entry id (dlq_…)')).action(async (id: string, opts) =>
    setExit((await (await load()).runDlqDelete(id, opts)) as 0 | 1),
  );

  target(dlq.command('purge').description('remove entries whose last failure is older than a duration'))
    .requiredOption('--older-than <duration>', 'e.g. 12h, 30d')
    .action(async (opts) => setExit((await (await load()).runDlqPurge(opts)) as 0 | 1));
}
