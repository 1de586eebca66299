import { Text } from 'ink';
import type { ReactNode } from 'react';
import { Dim } from '../theme.js';

/** A panel's first line: its name (inverse when focused) and a summary. */
export function Title({ name, focused, children }: { name: string; focused: boolean; children?: ReactNode }) {
  return (
    <Text wrap="truncate-end">
      <Text bold inverse={focused}>
        {focused ? '▶ ' : '  '}
        {name}
      </Text>
      {children ? <Text> </Text> : null}
      {children}
    </Text>
  );
}

/** A row of a list panel: `›` and inverse when selected in the focused panel. */
export function Row({ selected, focused, children }: { selected: boolean; focused: boolean; children?: ReactNode }) {
  return (
    <Text wrap="truncate-end" inverse={selected && focused}>
      {selected ? (focused ? '› ' : '· ') : '  '}
      {children}
    </Text>
  );
}

/** A dim line standing for a list with nothing in it (or no data). */
export function Empty({ text }: { text: string }) {
  return (
    <Text wrap="truncate-end">
      {'  '}
      <Dim>{text}</Dim>
    </Text>
  );
}
