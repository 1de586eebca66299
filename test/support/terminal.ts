import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Whether tmux is installed (the real-terminal tests need it). */
export function hasTmux(): boolean {
  try {
    execFileSync('tmux', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** A command running in a real pseudo-terminal: a detached tmux session on a private server. */
export interface Terminal {
  /** The pane's shell (`sh -c …`). */
  panePid(): Promise<number>;
  /** The visible screen as text (with escapes when `ansi`). */
  screen(ansi?: boolean): Promise<string>;
  /** The scrollback and the screen. */
  history(): Promise<string>;
  /** tmux key names (`Tab`, `Down`, `C-c`) or literal text with `literal`. */
  send(keys: string, literal?: boolean): Promise<void>;
  /** A pane variable: `pane_dead`, `pane_dead_status`, `alternate_on`, `cursor_flag`… */
  variable(name: string): Promise<string>;
  resize(columns: number, rows: number): Promise<void>;
  /** Waits until the screen matches `pattern` (or throws with the last screen). */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>;
  close(): Promise<void>;
}

/**
 * Starts `command` (a shell command line) in a `columns`x`rows` tmux pane with `env`. The pane
 * stays after the command exits (remain-on-exit), so the final screen and exit status can be read.
 */
export async function startTerminal(command: string, options: { columns: number; rows: number; env?: Record<string, string>; /** Record every byte the pane receives here. */ log?: string }): Promise<Terminal> {
  const socket = `wcagai-test-${randomBytes(4).toString('hex')}`;
  const tmux = (...args: string[]) => run('tmux', ['-L', socket, '-f', '/dev/null', ...args], { env: { ...process.env, TERM: 'xterm-256color' } });
  const envArgs = Object.entries(options.env ?? {}).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
  await tmux('new-session', '-d', '-s', 'top', '-x', String(options.columns), '-y', String(options.rows), ...envArgs, 'sleep 3600');
  await tmux('set-option', '-g', 'remain-on-exit', 'on');
  await tmux('set-option', '-g', 'status', 'off');
  await tmux('respawn-pane', '-k', '-t', 'top', ...envArgs, command);
  if (options.log) await tmux('pipe-pane', '-t', 'top', `cat >> '${options.log}'`);
  const variable = async (name: string) => (await tmux('display-message', '-p', '-t', 'top', `#{${name}}`)).stdout.trim();
  const screen = async (ansi = false) => (await tmux('capture-pane', '-p', ...(ansi ? ['-e'] : []), '-t', 'top')).stdout;
  return {
    panePid: async () => Number(await variable('pane_pid')),
    screen,
    history: async () => (await tmux('capture-pane', '-p', '-S', '-', '-t', 'top')).stdout,
    variable,
    async send(keys, literal = false) {
      await tmux('send-keys', '-t', 'top', ...(literal ? ['-l'] : []), keys);
    },
    async resize(columns, rows) {
      await tmux('resize-window', '-t', 'top', '-x', String(columns), '-y', String(rows));
    },
    async waitFor(pattern, timeoutMs = 15_000) {
      const until = Date.now() + timeoutMs;
      let last = '';
      for (;;) {
        last = await screen();
        if (pattern.test(last)) return last;
        if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${pattern} on screen:\n${last}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async close() {
      await tmux('kill-server').catch(() => undefined);
    },
  };
}
