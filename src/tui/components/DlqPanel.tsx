import { Box, Text } from 'ink';
import type { DlqSection } from '../../domain/snapshot.js';
import { age, count, fit, windowStart } from '../format.js';
import { Dim, Paint } from '../theme.js';
import { Empty, Row, Title } from './Title.js';

export interface DlqPanelProps {
  /** Undefined: the server has no DLQ. */
  dlq: DlqSection | undefined;
  rows: number;
  width: number;
  focused: boolean;
  selected: number;
  wide: boolean;
  now: number;
}

/** DLQ size and its newest entries, scrollable with the selection. */
export function DlqPanel({ dlq, rows, width, focused, selected, wide, now }: DlqPanelProps) {
  const body = Math.max(0, rows - 2);
  const entries = dlq?.newest ?? [];
  const start = windowStart(selected, Math.max(1, body), entries.length);
  const idWidth = 22;
  const hostWidth = wide ? 24 : 18;
  const codeWidth = wide ? 24 : 20;
  const urlWidth = Math.max(10, width - (2 + idWidth + hostWidth + codeWidth + 7 + 10 + 6));
  const header = `${fit('ID', idWidth, true)} ${fit('HOST', hostWidth, true)} ${fit('CODE', codeWidth, true)} ${'AGE'.padStart(6)}${wide ? `  ${fit('STATUS', 8, true)} URL` : ''}`;
  return (
    <Box flexDirection="column" height={rows} width={width} overflowY="hidden">
      <Title name="DLQ" focused={focused}>
        {dlq ? (
          <Text>
            <Paint color={dlq.size ? 'red' : 'green'} bold={dlq.size > 0}>{`${count(dlq.size)} entr${dlq.size === 1 ? 'y' : 'ies'}`}</Paint>
            {dlq.lastHourAdded ? ` · ${count(dlq.lastHourAdded)} in the last hour` : ''}
            {entries.length > body && body > 0 ? <Dim>{` · ${start + 1}-${Math.min(entries.length, start + body)} of ${entries.length} newest`}</Dim> : null}
          </Text>
        ) : null}
      </Title>
      <Text wrap="truncate-end">
        {'  '}
        <Dim>{header}</Dim>
      </Text>
      {!dlq ? <Empty text="no DLQ on this server" /> : entries.length === 0 ? <Empty text="empty: no scan failed for good" /> : null}
      {entries.slice(start, start + body).map((e, k) => (
        <Row key={e.id} selected={start + k === selected} focused={focused}>
          {fit(e.id, idWidth, true)} {fit(e.host, hostWidth, true)} <Paint color="red">{fit(e.code, codeWidth, true)}</Paint> {age(e.at, now).padStart(6)}
          {wide ? (
            <Text>
              {'  '}
              <Paint color={e.status === 'retrying' ? 'yellow' : undefined}>{fit(e.status, 8, true)}</Paint> <Dim>{fit(e.url, urlWidth)}</Dim>
            </Text>
          ) : e.status === 'retrying' ? (
            <Paint color="yellow">{' retrying'}</Paint>
          ) : null}
        </Row>
      ))}
    </Box>
  );
}
