import { Box, Text } from 'ink';
import type { ReactNode } from 'react';
import type { BreakerRow } from '../../domain/snapshot.js';
import { age, clock, fit, safe, windowStart } from '../format.js';
import { BREAKER_COLOR, Dim, Paint } from '../theme.js';
import { Empty, Row, Title } from './Title.js';

export interface BreakersPanelProps {
  /** Undefined: the server reports no breakers. */
  breakers: BreakerRow[] | undefined;
  /** Processes serving the API without a worker: marked `(api)` among a breaker's processes. */
  apiProcessIds?: ReadonlySet<string>;
  rows: number;
  width: number;
  focused: boolean;
  selected: number;
  wide: boolean;
  now: number;
}

/** `host-1234-a1b2c3` (host, pid, random suffix) -> `host:1234`; other ids as they are. */
export function processLabel(id: string): string {
  const m = /^(.+)-(\d+)-[0-9a-f]{6}$/.exec(id);
  return m ? `${m[1]}:${m[2]}` : id;
}

function State({ state }: { state: BreakerRow['state'] }) {
  return <Paint color={BREAKER_COLOR[state]} bold={state !== 'CLOSED'}>{fit(state, 9, true)}</Paint>;
}

/** Every service's breaker (the worst state in the fleet), with each process's state when they differ. */
export function BreakersPanel({ breakers, apiProcessIds, rows, width, focused, selected, wide, now }: BreakersPanelProps) {
  const lines: ReactNode[] = [];
  if (!breakers) lines.push(<Empty key="none" text="no breaker figures from this server" />);
  else if (breakers.length === 0) lines.push(<Empty key="none" text="no breakers" />);
  else {
    // Each breaker is one line, plus one for its processes when they disagree: the window is
    // over those lines, so the selected breaker is always on screen (its process line may not be).
    const body = Math.max(1, rows - 1);
    const items: Array<{ index: number; perProcess: boolean }> = [];
    breakers.forEach((b, index) => {
      items.push({ index, perProcess: false });
      if (!b.uniform) items.push({ index, perProcess: true });
    });
    const at = items.findIndex((item) => item.index === selected && !item.perProcess);
    let start = windowStart(Math.max(0, at), body, items.length);
    // Not a process line without its breaker above it.
    if (items[start]?.perProcess && start < at) start++;
    for (const { index: i, perProcess } of items.slice(start, start + body)) {
      const b = breakers[i]!;
      if (perProcess) {
        const per = (b.processes ?? []).map((p) => `${processLabel(safe(p.process))}${apiProcessIds?.has(p.process) ? ' (api)' : ''} ${safe(p.state)}${p.failures ? `(${p.failures})` : ''}`).join(', ');
        lines.push(
          <Text key={`${b.name}/p`} wrap="truncate-end">
            {'    ↳ '}
            <Dim>{`per process: ${per}`}</Dim>
          </Text>,
        );
        continue;
      }
      const opened = b.openedAt ? `opened ${clock(b.openedAt)} (${age(b.openedAt, now)} ago)` : '';
      lines.push(
        <Row key={b.name} selected={i === selected} focused={focused}>
          {fit(b.name, 11, true)}
          <State state={b.state} />
          {` ${String(b.failures).padStart(3)} fail  `}
          {opened}
          {wide && b.lastFailure ? <Dim>{`  last: ${fit(b.lastFailure, Math.max(10, width - 60))}`}</Dim> : null}
        </Row>,
      );
    }
  }
  const open = breakers?.filter((b) => b.state !== 'CLOSED').length ?? 0;
  return (
    <Box flexDirection="column" height={rows} width={width} overflowY="hidden">
      <Title name="BREAKERS" focused={focused}>
        {breakers ? (
          <Text>
            {`${breakers.length} services`}
            {open ? <Paint color="red" bold>{` · ${open} not closed`}</Paint> : <Paint color="green">{' · all closed'}</Paint>}
          </Text>
        ) : null}
      </Title>
      {lines}
    </Box>
  );
}
