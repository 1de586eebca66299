/** Text helpers of the dashboard: pure, so the components stay small. */
import stringWidth from 'string-width';
import { clean } from '../domain/text.js';

/**
 * `42s`, `5m`, `3h12m`, `2d4h`: seconds only under a minute. Coarse on purpose: a line whose
 * text changes every second is a new string every second, and Ink caches the size of every
 * string it has measured for the life of the process.
 */
export function duration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h${String(m % 60).padStart(2, '0')}m`;
  const d = Math.floor(h / 24);
  return `${d}d${h % 24}h`;
}

/** Age of an ISO time against `now`: `12s`, or `?` when unparsable. */
export function age(iso: string | null | undefined, now: number): string {
  if (!iso) return '-';
  const t = Date.parse(iso);
  return Number.isNaN(t) ? '?' : duration(now - t);
}

/** Local wall-clock time `HH:MM:SS`. */
export function clock(t: number | string): string {
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? '?' : d.toTimeString().slice(0, 8);
}

/** `1,234`. */
export function count(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** `512M`, `1.2G`. */
export function bytes(n: number): string {
  const mb = n / 2 ** 20;
  return mb >= 1024 ? `${(mb / 1024).toFixed(1)}G` : `${Math.round(mb)}M`;
}

/** `850ms`, `4.2s`. */
export function millis(ms: number | null): string {
  if (ms === null) return '-';
  return Math.round(ms) < 1000 ? `${Math.round(ms)}ms` : `${(ms / 1000).toFixed(1)}s`;
}

/**
 * Text from the server (and through it from other services and pages: a breaker's last failure
 * quotes an upstream's answer) made safe to print: control characters dropped, so no escape
 * sequence reaches the terminal, and a missing value shown as `-`. Every string of a snapshot,
 * a status line or a prompt goes through here (or through `fit`, which calls it).
 */
export function safe(text: string | number | null | undefined): string {
  return text === null || text === undefined ? '-' : clean(String(text));
}

/**
 * A copy of `value` with `safe` applied to every string in it, however deep (numbers a server
 * sent as strings included): what the dashboard draws a snapshot from.
 */
export function safeDeep<T>(value: T): T {
  if (typeof value === 'string') return clean(value) as T;
  if (Array.isArray(value)) return value.map(safeDeep) as T;
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, safeDeep(v)])) as T;
  return value;
}

/** Printable ASCII only: one column per character, the common case. */
const NARROW = /^[\x20-\x7e]*$/;

/**
 * `safe(text)` cut to `width` terminal columns, marking the cut with `~`; padded when `pad`.
 * Wide characters (CJK) count two columns. An ASCII mark on purpose: Ink measures a line with
 * any non-ASCII character through Intl.Segmenter, and one `…` per table row made every frame
 * half again as expensive to draw.
 */
export function fit(text: string | number | null | undefined, width: number, pad = false): string {
  if (width <= 0) return '';
  const plain = safe(text);
  if (NARROW.test(plain)) {
    const cut = plain.length > width ? `${plain.slice(0, width - 1)}~` : plain;
    return pad ? cut.padEnd(width) : cut;
  }
  let cut = plain;
  let used = stringWidth(plain);
  if (used > width) {
    cut = '';
    used = 0;
    for (const char of plain) {
      const w = stringWidth(char);
      if (used + w > width - 1) break;
      cut += char;
      used += w;
    }
    cut += '~';
    used += 1;
  }
  return pad && used < width ? cut + ' '.repeat(width - used) : cut;
}

const BLOCKS = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/** A sparkline of `values` squeezed (summed) into at most `width` cells; blank cells for zero. */
export function sparkline(values: readonly number[], width: number): string {
  if (width <= 0 || values.length === 0) return '';
  const per = Math.max(1, Math.ceil(values.length / width));
  const cells: number[] = [];
  // Group from the newest end so the last cell is always the current bucket group.
  for (let end = values.length; end > 0; end -= per) {
    let sum = 0;
    for (let i = Math.max(0, end - per); i < end; i++) sum += values[i]!;
    cells.unshift(sum);
  }
  const max = Math.max(...cells);
  return cells.map((v) => (v <= 0 || max <= 0 ? ' ' : BLOCKS[Math.min(BLOCKS.length - 1, Math.floor((v / max) * (BLOCKS.length - 1)))]!)).join('');
}

/** `████░░░░` for `percent` of `width` cells. */
export function bar(percent: number, width: number): string {
  const filled = Math.max(0, Math.min(width, Math.round((percent / 100) * width)));
  return '█'.repeat(filled) + '░'.repeat(Math.max(0, width - filled));
}

/** The first index of a `rows`-long window over `total` items that keeps `selected` in view, centred when it can. */
export function windowStart(selected: number, rows: number, total: number): number {
  if (total <= rows) return 0;
  return Math.max(0, Math.min(total - rows, selected - Math.floor(rows / 2)));
}
