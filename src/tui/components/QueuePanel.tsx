import { Box, Text } from 'ink';
import type { QueueFigures, Throughput } from '../../domain/snapshot.js';
import { bar, count, millis, sparkline } from '../format.js';
import { Dim, Paint } from '../theme.js';
import { Empty, Title } from './Title.js';

export interface QueuePanelProps {
  queue: QueueFigures | null;
  throughput: Throughput | null;
  focused: boolean;
  width: number;
}

const UTIL_COLOR: Record<string, string> = { healthy: 'green', warning: 'yellow', critical: 'red' };

/** Job counts, utilization against capacity, scans per minute over ten minutes and the p95 duration. */
export function QueuePanel({ queue, throughput, focused, width }: QueuePanelProps) {
  if (!queue) {
    return (
      <Box flexDirection="column" height={2}>
        <Title name="QUEUE" focused={focused} />
        <Empty text="queue figures unavailable" />
      </Box>
    );
  }
  const wide = width >= 100;
  const barWidth = wide ? 20 : 10;
  // What is left of the second line after the bar and the figures goes to the sparkline.
  const perMinute = throughput?.lastMinute ?? 0;
  const fixed = 2 + 5 + barWidth + 1 + 7 + (wide ? 11 + String(count(queue.maxCapacity)).length : 0) + 2 + 10 + 2 + 8 + String(perMinute).length + 2 + 4 + 7;
  const sparkWidth = Math.max(10, Math.min(60, width - fixed));
  const idle = !throughput || throughput.buckets.every((n) => n === 0);
  const spark = idle ? '' : sparkline(throughput.buckets, sparkWidth);
  return (
    <Box flexDirection="column" height={2}>
      <Title name="QUEUE" focused={focused}>
        <Text>
          {`waiting ${count(queue.waiting)}  active ${count(queue.active)}  delayed ${count(queue.delayed)}  `}
          <Paint color={queue.failed ? 'red' : undefined}>{`failed ${count(queue.failed)}`}</Paint>
          {`  completed ${count(queue.completed)}`}
          {queue.paused ? <Paint color="yellow" bold>{'  PAUSED'}</Paint> : null}
        </Text>
      </Title>
      <Text wrap="truncate-end">
        {'  util '}
        <Paint color={UTIL_COLOR[queue.state]}>{bar(queue.utilizationPercent, barWidth)}</Paint>
        {` ${queue.utilizationPercent.toFixed(1).padStart(5)}%`}
        {wide ? <Dim>{` of ${count(queue.maxCapacity)}`}</Dim> : null}
        {'  scans/min '}
        {idle ? <Dim>{'·'.repeat(sparkWidth)}</Dim> : <Paint color="cyan">{spark.padStart(sparkWidth)}</Paint>}
        {` ${perMinute}/min`}
        {throughput?.failedLastMinute ? <Paint color="red">{` (${throughput.failedLastMinute} failed)`}</Paint> : null}
        {`  p95 ${millis(throughput?.p95Ms ?? null)}`}
      </Text>
    </Box>
  );
}
