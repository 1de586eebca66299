import type { Snapshot } from '../domain/snapshot.js';
import { apiProcessesOf } from './api-processes.js';

export type PanelName = 'queue' | 'breakers' | 'workers' | 'dlq' | 'alerts';
/** Tab order. */
export const PANELS: readonly PanelName[] = ['queue', 'breakers', 'workers', 'dlq', 'alerts'];

export const MIN_COLUMNS = 80;
export const MIN_ROWS = 24;
/** A panel at least this wide shows more per row (pid, URL, last failure…). */
export const DETAIL_WIDTH = 110;
/** From this terminal width on: two columns of panels. */
export const TWO_COLUMNS = 200;
/** Header (2) and footer (status line, key hints). */
export const CHROME_ROWS = 4;

export interface Size {
  columns: number;
  rows: number;
}

/** Items a panel lists (its selectable rows). */
export function itemCount(snapshot: Snapshot | null, panel: PanelName): number {
  if (!snapshot) return 0;
  switch (panel) {
    case 'queue':
      return 0;
    case 'breakers':
      return snapshot.breakers?.length ?? 0;
    case 'workers':
      return snapshot.workers?.length ?? 0;
    case 'dlq':
      return snapshot.dlq?.newest.length ?? 0;
    case 'alerts':
      return snapshot.alerts?.length ?? 0;
  }
}

/** Lines a panel would use to show everything, and the fewest it can live with. */
export function panelNeeds(snapshot: Snapshot | null, panel: PanelName): { min: number; wanted: number } {
  const n = itemCount(snapshot, panel);
  switch (panel) {
    case 'queue':
      return { min: 2, wanted: 2 };
    case 'breakers': {
      const split = snapshot?.breakers?.filter((b) => !b.uniform).length ?? 0;
      return { min: 2, wanted: 1 + Math.max(1, n + split) };
    }
    case 'workers':
      // The API processes are listed after the workers (not selectable).
      return { min: 3, wanted: 2 + Math.max(1, n) + apiProcessesOf(snapshot).length };
    case 'dlq':
      return { min: 3, wanted: 2 + Math.max(1, n) };
    case 'alerts':
      return { min: 2, wanted: 1 + Math.max(1, n) };
  }
}

/**
 * Shares `total` lines among `panels`: each gets its minimum, then the rest is water-filled
 * (panels wanting least are satisfied first, none gets more than its share) with the focused
 * panel's share counted twice. Lines nobody wants go to the last panel. Pure, so every
 * terminal size is a unit test.
 */
export function allocateRows(total: number, panels: readonly PanelName[], snapshot: Snapshot | null, focus: PanelName | null): Record<PanelName, number> {
  const rows = Object.fromEntries(PANELS.map((p) => [p, 0])) as Record<PanelName, number>;
  const needs = Object.fromEntries(panels.map((p) => [p, panelNeeds(snapshot, p)])) as Record<PanelName, { min: number; wanted: number }>;
  let left = total;
  for (const p of panels) {
    rows[p] = Math.min(needs[p].min, Math.max(0, left));
    left -= rows[p];
  }
  const weight = (p: PanelName) => (p === focus ? 2 : 1);
  const queue = [...panels].sort((a, b) => needs[a].wanted - needs[a].min - (needs[b].wanted - needs[b].min));
  let weights = queue.reduce((n, p) => n + weight(p), 0);
  for (const p of queue) {
    const share = Math.floor((left * weight(p)) / weights);
    const extra = Math.max(0, Math.min(needs[p].wanted - rows[p], share));
    rows[p] += extra;
    left -= extra;
    weights -= weight(p);
  }
  // Rounding leftovers and unwanted lines: the focused panel if it still wants them, else the last panel.
  if (left > 0 && focus && panels.includes(focus) && needs[focus].wanted > rows[focus]) {
    const extra = Math.min(left, needs[focus].wanted - rows[focus]);
    rows[focus] += extra;
    left -= extra;
  }
  const last = panels[panels.length - 1];
  if (left > 0 && last && last !== 'queue') rows[last] += left;
  return rows;
}

/** The panels of each column and its width: one column, or from TWO_COLUMNS on two (the lists get the wider one). */
export function columnsFor(size: Size, gap = 2): Array<{ panels: PanelName[]; width: number }> {
  if (size.columns < TWO_COLUMNS) return [{ panels: ['queue', 'breakers', 'workers', 'dlq', 'alerts'], width: size.columns }];
  const left = Math.floor((size.columns - gap) * 0.4);
  return [
    { panels: ['queue', 'breakers', 'alerts'], width: left },
    { panels: ['workers', 'dlq'], width: size.columns - gap - left },
  ];
}
