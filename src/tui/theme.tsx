import { Text, type TextProps } from 'ink';
import { createContext, useContext, type ReactNode } from 'react';
import type { AlertSeverity, BreakerStateName, ServiceStatus } from '../domain/snapshot.js';

/** Whether to colour (false under NO_COLOR or a dumb terminal); bold and inverse stay, they carry no colour. */
export const ColorContext = createContext(true);

export const STATUS_COLOR: Record<ServiceStatus, string> = { healthy: 'green', degraded: 'yellow', unhealthy: 'red' };
export const BREAKER_COLOR: Record<BreakerStateName, string> = { CLOSED: 'green', HALF_OPEN: 'yellow', OPEN: 'red', ISOLATED: 'magenta' };
export const SEVERITY_COLOR: Record<AlertSeverity, string> = { info: 'blue', warning: 'yellow', error: 'red', critical: 'redBright' };

/** Text in `color` unless colour is off. */
export function Paint({ color, children, ...rest }: Omit<TextProps, 'color'> & { color?: string | undefined; children?: ReactNode }) {
  const enabled = useContext(ColorContext);
  return (
    <Text {...rest} {...(enabled && color ? { color } : {})}>
      {children}
    </Text>
  );
}

/** Dim text, or plain text without colour. */
export function Dim({ children }: { children?: ReactNode }) {
  const enabled = useContext(ColorContext);
  return <Text dimColor={enabled}>{children}</Text>;
}
