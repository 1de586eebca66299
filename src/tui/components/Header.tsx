import { Box, Text } from 'ink';
import type { Snapshot } from '../../domain/snapshot.js';
import { apiProcessesOf } from '../api-processes.js';
import type { Connection } from '../feed.js';
import { clock, duration, fit, safe } from '../format.js';
import { Dim, Paint, STATUS_COLOR } from '../theme.js';

export interface HeaderProps {
  snapshot: Snapshot | null;
  connection: Connection;
  receivedAt: number | null;
  url: string;
  now: number;
  width: number;
}

function ConnectionLine({ connection, snapshot, receivedAt, url, now, width }: HeaderProps) {
  const shown = snapshot && receivedAt ? ` · showing the snapshot of ${clock(receivedAt)}` : '';
  switch (connection.kind) {
    case 'connecting':
      return <Dim>{fit(`connecting to ${url}…`, width)}</Dim>;
    case 'unauthorized':
      return (
        <Paint color="red" bold wrap="truncate-end">
          {`✖ unauthorized: check --token / ADMIN_TOKEN (${connection.reason}); retrying in ${duration(Math.max(0, connection.retryAt - now))}${shown}`}
        </Paint>
      );
    case 'down':
      return (
        <Paint color="red" bold wrap="truncate-end">
          {`✖ disconnected since ${clock(connection.since)} (${connection.reason}), retrying in ${duration(Math.max(0, connection.retryAt - now))}${shown}`}
        </Paint>
      );
    case 'live': {
      const alerts = snapshot?.alerts?.length ?? 0;
      const stale = snapshot?.workers?.filter((w) => w.stale).length ?? 0;
      const apiCount = apiProcessesOf(snapshot).length;
      return (
        <Text wrap="truncate-end">
          <Paint color="green">●</Paint>
          {` live (${connection.via === 'stream' ? 'stream' : 'polling'})`}
          {snapshot?.workers ? ` · ${snapshot.workers.length} worker${snapshot.workers.length === 1 ? '' : 's'}` : ''}
          {apiCount ? ` · ${apiCount} API` : ''}
          {stale ? <Paint color="red">{` (${stale} stale)`}</Paint> : null}
          {snapshot?.dlq ? ` · DLQ ${snapshot.dlq.size}` : ''}
          {alerts ? <Paint color="red" bold>{` · ${alerts} alert${alerts === 1 ? '' : 's'} firing`}</Paint> : snapshot?.alerts ? ' · no alerts' : ''}
          {snapshot?.queue?.paused ? <Paint color="yellow" bold>{' · QUEUE PAUSED'}</Paint> : null}
        </Text>
      );
    }
  }
}

/** Service status (coloured), version, uptime, server URL and the age of the data; then the connection. */
export function Header(props: HeaderProps) {
  const { snapshot, receivedAt, url, now, width } = props;
  const status = snapshot?.status;
  const updated = receivedAt ? `updated ${duration(now - receivedAt)} ago` : 'no data yet';
  return (
    <Box flexDirection="column" width={width} height={2}>
      <Text wrap="truncate-end">
        <Text bold>wcagai top </Text>
        <Paint color={status ? STATUS_COLOR[status] : undefined} bold>
          {status ? `● ${safe(status).toUpperCase()}` : '○ UNKNOWN'}
        </Paint>
        {snapshot ? `  v${safe(snapshot.serviceVersion)}  up ${duration(snapshot.uptimeSeconds * 1000)}` : ''}
        {`  ${url}  `}
        <Dim>{updated}</Dim>
      </Text>
      <ConnectionLine {...props} />
    </Box>
  );
}
