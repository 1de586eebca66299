import { Box, Text } from 'ink';
import type { PanelName } from '../layout.js';
import { Dim, Paint } from '../theme.js';

/** The result of the last action, or the question awaiting y/n. */
export interface StatusMessage {
  text: string;
  tone: 'info' | 'ok' | 'error';
}

export interface FooterProps {
  status: StatusMessage | null;
  /** A confirmation question (answered with y or n). */
  prompt: string | null;
  focus: PanelName | null;
  width: number;
}

const TONE: Record<StatusMessage['tone'], string | undefined> = { info: undefined, ok: 'green', error: 'red' };

const HINTS: Record<PanelName, string> = {
  queue: 'p pause/resume',
  breakers: 'x reset · p pause',
  workers: 'p pause/resume',
  dlq: 'r retry · R retry shown · p pause',
  alerts: 'p pause/resume',
};

/** Status line and the keys that work in the focused panel. */
export function Footer({ status, prompt, focus, width }: FooterProps) {
  return (
    <Box flexDirection="column" height={2} width={width}>
      {prompt ? (
        <Paint color="yellow" bold wrap="truncate-end">
          {`${prompt} (y/n)`}
        </Paint>
      ) : status ? (
        <Paint color={TONE[status.tone]} wrap="truncate-end">
          {status.text}
        </Paint>
      ) : (
        <Text> </Text>
      )}
      <Text wrap="truncate-end">
        <Dim>{`Tab focus · ↑↓ jk select · ${focus ? HINTS[focus] : 'p pause/resume'} · ? help · q quit`}</Dim>
      </Text>
    </Box>
  );
}
