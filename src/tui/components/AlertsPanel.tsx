import { Box, Text } from 'ink';
import type { AlertRow } from '../../domain/snapshot.js';
import { age, clock, fit, windowStart } from '../format.js';
import { Paint, SEVERITY_COLOR } from '../theme.js';
import { Empty, Row, Title } from './Title.js';

export interface AlertsPanelProps {
  /** Undefined: alerting is off on this server. */
  alerts: AlertRow[] | undefined;
  rows: number;
  width: number;
  focused: boolean;
  selected: number;
  now: number;
}

/** `  silenced until HH:MM:SS`. */
const SILENCE_WIDTH = 24;

/** Firing alerts, most severe first, with their severity, since when they fire, and a silence if any. */
export function AlertsPanel({ alerts, rows, width, focused, selected, now }: AlertsPanelProps) {
  const body = Math.max(0, rows - 1);
  const list = alerts ?? [];
  const start = windowStart(selected, Math.max(1, body), list.length);
  return (
    <Box flexDirection="column" height={rows} width={width} overflowY="hidden">
      <Title name="ALERTS" focused={focused}>
        {alerts ? <Paint color={list.length ? 'red' : 'green'} bold={list.length > 0}>{list.length ? `${list.length} firing` : 'none firing'}</Paint> : null}
      </Title>
      {!alerts ? <Empty text="alerting is off on this server" /> : list.length === 0 ? <Empty text="all quiet" /> : null}
      {list.slice(start, start + body).map((a, k) => (
        <Row key={a.id} selected={start + k === selected} focused={focused}>
          <Paint color={SEVERITY_COLOR[a.severity]} bold>
            {fit(a.severity, 9, true).toUpperCase()}
          </Paint>
          {fit(a.summary, Math.max(10, width - 40 - (a.silencedUntil ? SILENCE_WIDTH : 0)), true)}
          <Text>{`  since ${clock(a.since)} (${age(a.since, now)})`}</Text>
          {a.silencedUntil ? <Paint color="gray">{`  silenced until ${clock(a.silencedUntil)}`}</Paint> : null}
        </Row>
      ))}
    </Box>
  );
}
