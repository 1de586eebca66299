/** Text helpers of the dashboard: pure, so the components stay small. */

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
 * Cuts `text` to `width` columns, marking the cut with `~`; pads it when `pad`. An ASCII mark on
 * purpose: Ink measures a line with any non-ASCII character through Intl.Segmenter, and one `…`
 * per table row made every frame half again as expensive to draw.
 */
export function fit(text: string, width: number, pad = false): string {
  if (width <= 0) return '';
  const cut = text.length > width ? `${text.slice(0, Math.max(0, width - 1))}~` : text;
  return pad ? cut.padEnd(width) : cut;
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
