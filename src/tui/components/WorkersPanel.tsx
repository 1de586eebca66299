import { Box, Text } from 'ink';
import type { WorkerRow } from '../../domain/snapshot.js';
import type { ApiProcessRow } from '../api-processes.js';
import { age, bytes, count, duration, fit, windowStart } from '../format.js';
import { Dim, Paint } from '../theme.js';
import { Empty, Row, Title } from './Title.js';

export interface WorkersPanelProps {
  workers: WorkerRow[] | null;
  /** Processes serving the API without a worker: listed after the workers, marked `api`, never counted as workers. */
  apiProcesses?: ApiProcessRow[];
  rows: number;
  width: number;
  focused: boolean;
  selected: number;
  wide: boolean;
  now: number;
}

/** Live workers from their heartbeats, then the API processes; a stale heartbeat is marked. */
export function WorkersPanel({ workers, apiProcesses = [], rows, width, focused, selected, wide, now }: WorkersPanelProps) {
  const idWidth = wide ? 28 : 20;
  const hostWidth = wide ? 16 : 12;
  const header = `${fit('WORKER', idWidth, true)} ${fit('HOST', hostWidth, true)} ${'ACTIVE'.padStart(7)} ${'DONE'.padStart(7)} ${'RESTARTS'.padStart(8)} ${'RSS'.padStart(6)} ${'BEAT'.padStart(5)}${wide ? `  ${'PID'.padStart(7)} ${'UP'.padStart(7)} BROWSER` : ''}`;
  const body = Math.max(0, rows - 2);
  const list = workers ?? [];
  const start = windowStart(selected, Math.max(1, body), list.length);
  const stale = list.filter((w) => w.stale).length;
  const busy = list.reduce((n, w) => n + w.active, 0);
  const slots = list.reduce((n, w) => n + w.concurrency, 0);
  return (
    <Box flexDirection="column" height={rows} width={width} overflowY="hidden">
      <Title name="WORKERS" focused={focused}>
        {workers ? (
          <Text>
            {`${list.length} live · ${busy}/${slots} busy`}
            {stale ? <Paint color="red" bold>{` · ${stale} stale`}</Paint> : null}
            {apiProcesses.length ? ` · ${apiProcesses.length} API process${apiProcesses.length === 1 ? '' : 'es'}` : ''}
            {list.length > body && body > 0 ? <Dim>{` · ${start + 1}-${Math.min(list.length, start + body)} of ${list.length}`}</Dim> : null}
          </Text>
        ) : null}
      </Title>
      <Text wrap="truncate-end">
        {'  '}
        <Dim>{header}</Dim>
      </Text>
      {!workers ? <Empty text="no data yet" /> : list.length === 0 ? <Paint color="yellow">{'  no live workers: nothing is scanning'}</Paint> : null}
      {list.slice(start, start + body).map((w, k) => (
        <Row key={w.id} selected={start + k === selected} focused={focused}>
          {fit(w.id, idWidth, true)} {fit(w.host, hostWidth, true)} {`${w.active}/${w.concurrency}`.padStart(7)} {count(w.scansDone).padStart(7)}{' '}
          <Paint color={w.browserRestarts ? 'yellow' : undefined}>{String(w.browserRestarts).padStart(8)}</Paint> {bytes(w.rssBytes).padStart(6)}{' '}
          <Paint color={w.stale ? 'red' : undefined} bold={w.stale}>
            {duration(w.heartbeatAgeMs).padStart(5)}
            {w.stale ? ' STALE' : ''}
          </Paint>
          {wide ? `  ${String(w.pid).padStart(7)} ${age(w.startedAt, now).padStart(7)} ${w.browserUp === null ? '?' : w.browserUp ? 'up' : 'DOWN'}` : ''}
        </Row>
      ))}
      {workers
        ? apiProcesses.slice(0, Math.max(0, body - Math.min(body, list.length - start) - (list.length === 0 ? 1 : 0))).map((a) => (
            <Row key={`api/${a.id}`} selected={false} focused={focused}>
              {fit(a.id, idWidth, true)} {fit(a.host, hostWidth, true)} <Paint color="cyan">{'api'.padStart(7)}</Paint> {'-'.padStart(7)} {'-'.padStart(8)} {bytes(a.rssBytes).padStart(6)}{' '}
              <Paint color={a.stale ? 'red' : undefined} bold={a.stale}>
                {duration(a.heartbeatAgeMs).padStart(5)}
                {a.stale ? ' STALE' : ''}
              </Paint>
              {wide ? `  ${String(a.pid).padStart(7)} ${age(a.startedAt, now).padStart(7)} -` : ''}
            </Row>
          ))
        : null}
    </Box>
  );
}
