import { Box, Text } from 'ink';
import { useMemo } from 'react';
import type { FeedState } from '../feed.js';
import { safe, safeDeep } from '../format.js';
import { allocateRows, CHROME_ROWS, columnsFor, DETAIL_WIDTH, MIN_COLUMNS, MIN_ROWS, type PanelName, type Size } from '../layout.js';
import { AlertsPanel } from './AlertsPanel.js';
import { apiProcessesOf } from '../api-processes.js';
import { BreakersPanel } from './BreakersPanel.js';
import { DlqPanel } from './DlqPanel.js';
import { Footer, type StatusMessage } from './Footer.js';
import { Header } from './Header.js';
import { Help } from './Help.js';
import { QueuePanel } from './QueuePanel.js';
import { WorkersPanel } from './WorkersPanel.js';

export interface DashboardProps {
  feed: FeedState;
  url: string;
  now: number;
  size: Size;
  /** Null: nothing focused (a printed snapshot). */
  focus: PanelName | null;
  selected: Record<PanelName, number>;
  status: StatusMessage | null;
  prompt: string | null;
  help: boolean;
}

/**
 * The whole screen, a pure function of its props: header, the panels (one column, two on very
 * wide terminals; panels 110 columns wide or more show more per row), and the footer. It draws one line less than
 * the terminal's height so Ink updates it in place instead of clearing the screen each second.
 */
export function Dashboard(props: DashboardProps) {
  const { now, size, focus, selected, help } = props;
  // Everything drawn from the server (and through it from other services and pages) or typed by
  // an operator loses its control characters here: no escape sequence reaches the terminal.
  const snapshot = useMemo(() => safeDeep(props.feed.snapshot), [props.feed.snapshot]);
  const connection = useMemo(() => safeDeep(props.feed.connection), [props.feed.connection]);
  const url = safe(props.url);
  const status = props.status && { ...props.status, text: safe(props.status.text) };
  const prompt = props.prompt === null ? null : safe(props.prompt);
  const width = size.columns;
  if (size.columns < MIN_COLUMNS || size.rows < MIN_ROWS) {
    return (
      <Box flexDirection="column" width={width}>
        <Text wrap="truncate-end">{`wcagai top needs a ${MIN_COLUMNS}x${MIN_ROWS} terminal; this one is ${size.columns}x${size.rows}.`}</Text>
        <Text wrap="truncate-end">{'Enlarge it, or press q to quit.'}</Text>
      </Box>
    );
  }
  const height = size.rows - 1;
  const bodyRows = height - CHROME_ROWS;
  const gap = 2;
  const columns = columnsFor(size, gap);

  const panel = (name: PanelName, rows: number, panelWidth: number) => {
    const common = { focused: focus === name, width: panelWidth, now };
    const wide = panelWidth >= DETAIL_WIDTH;
    switch (name) {
      case 'queue':
        return <QueuePanel key={name} queue={snapshot?.queue ?? null} throughput={snapshot?.throughput ?? null} focused={focus === name} width={panelWidth} />;
      case 'breakers':
        return <BreakersPanel key={name} {...common} breakers={snapshot?.breakers} apiProcessIds={new Set(apiProcessesOf(snapshot).map((a) => a.id))} rows={rows} selected={selected.breakers} wide={wide} />;
      case 'workers':
        return <WorkersPanel key={name} {...common} workers={snapshot?.workers ?? null} apiProcesses={apiProcessesOf(snapshot)} rows={rows} selected={selected.workers} wide={wide} />;
      case 'dlq':
        return <DlqPanel key={name} {...common} dlq={snapshot?.dlq} rows={rows} selected={selected.dlq} wide={wide} />;
      case 'alerts':
        return <AlertsPanel key={name} {...common} alerts={snapshot?.alerts} rows={rows} selected={selected.alerts} />;
    }
  };

  return (
    <Box flexDirection="column" width={width} height={height}>
      <Header snapshot={snapshot} connection={connection} receivedAt={props.feed.receivedAt} url={url} now={now} width={width} />
      {help ? (
        <Help rows={bodyRows} width={width} />
      ) : !snapshot ? (
        <Box height={bodyRows} width={width}>
          <Text wrap="truncate-end">{`  waiting for the first snapshot from ${url}…`}</Text>
        </Box>
      ) : (
        <Box flexDirection="row" height={bodyRows} width={width}>
          {columns.map((column, i) => {
            const rows = allocateRows(bodyRows, column.panels, snapshot, focus);
            return (
              <Box key={column.panels.join()} flexDirection="column" width={column.width} marginRight={i < columns.length - 1 ? gap : 0}>
                {column.panels.map((name) => panel(name, rows[name], column.width))}
              </Box>
            );
          })}
        </Box>
      )}
      <Footer status={status} prompt={prompt} focus={focus} width={width} />
    </Box>
  );
}
