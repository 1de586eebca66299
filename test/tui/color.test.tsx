import { describe, expect, it } from 'vitest';

/**
 * NO_COLOR: the dashboard passes no colour to Ink when colour is off (the command sets it from
 * NO_COLOR and TERM=dumb). Colour support is forced on before Ink loads, so the difference shows.
 */
process.env.FORCE_COLOR = '1';
const { render } = await import('ink-testing-library');
const { ColorContext } = await import('../../src/tui/theme.js');
const { Dashboard } = await import('../../src/tui/components/Dashboard.js');
const { PANELS } = await import('../../src/tui/layout.js');
const { breakerOpenSnapshot, NOW } = await import('./fixtures.js');

// ESC [ 3x/9x m: a foreground colour (bold, dim and inverse are not colours).
const COLOUR = /\x1b\[(3[0-7]|9[0-7]|38;)/;

function draw(color: boolean): string {
  const selected = Object.fromEntries(PANELS.map((p) => [p, 0])) as Record<(typeof PANELS)[number], number>;
  const { lastFrame, unmount } = render(
    <ColorContext.Provider value={color}>
      <Dashboard
        feed={{ snapshot: breakerOpenSnapshot(), receivedAt: NOW, connection: { kind: 'down', since: NOW, reason: 'ECONNREFUSED', retryAt: NOW + 1_000, attempts: 1 } }}
        url="http://127.0.0.1:8080"
        now={NOW}
        size={{ columns: 80, rows: 24 }}
        focus="breakers"
        selected={selected}
        status={{ text: 'failed', tone: 'error' }}
        prompt={null}
        help={false}
      />
    </ColorContext.Provider>,
  );
  const text = lastFrame() ?? '';
  unmount();
  return text;
}

describe('NO_COLOR', () => {
  it('colours states when colour is on, and draws the same text without any colour when off', () => {
    const coloured = draw(true);
    const plain = draw(false);
    expect(coloured).toMatch(COLOUR);
    expect(plain).not.toMatch(COLOUR);
    const strip = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '');
    expect(strip(plain)).toBe(strip(coloured));
    expect(strip(plain)).toContain('OPEN');
  });
});
