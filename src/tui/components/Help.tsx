import { Box, Text } from 'ink';

const KEYS: Array<[string, string]> = [
  ['Tab / Shift-Tab', 'move the focus between panels'],
  ['↑ ↓  or  k j', 'select a row in the focused panel (PgUp/PgDn, g/G: jump)'],
  ['r', 'DLQ: retry the selected entry (asks y/n)'],
  ['R', 'DLQ: retry every entry shown (asks y/n)'],
  ['x', 'Breakers: reset the selected breaker fleet-wide (asks y/n)'],
  ['p', 'pause or resume the queue (asks y/n)'],
  ['?', 'show or hide this help'],
  ['q  or  Ctrl-C', 'quit'],
];

/** The key reference, shown instead of the panels while `?` is on. */
export function Help({ rows, width }: { rows: number; width: number }) {
  return (
    <Box flexDirection="column" height={rows} width={width} overflowY="hidden">
      <Text bold>{'  KEYS'}</Text>
      {KEYS.map(([key, what]) => (
        <Text key={key} wrap="truncate-end">
          {'  '}
          <Text bold>{key.padEnd(18)}</Text>
          {what}
        </Text>
      ))}
      <Text> </Text>
      <Text wrap="truncate-end">{'  Actions go through the admin API; their result (or the problem) shows in the status line.'}</Text>
      <Text wrap="truncate-end">{'  The last snapshot stays on screen while the server is unreachable.'}</Text>
    </Box>
  );
}
