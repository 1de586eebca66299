import type { Snapshot } from '../domain/snapshot.js';
import type { PanelName } from './layout.js';

/** A panel's selection: the selected item's key, and its index as a fallback once that item is gone. */
export interface Selection {
  key: string | null;
  index: number;
}

/** The keys of the items a panel lists, in order. */
export function keysOf(snapshot: Snapshot | null, panel: PanelName): string[] {
  if (!snapshot) return [];
  switch (panel) {
    case 'queue':
      return [];
    case 'breakers':
      return (snapshot.breakers ?? []).map((b) => b.name);
    case 'workers':
      return (snapshot.workers ?? []).map((w) => w.id);
    case 'dlq':
      return (snapshot.dlq?.newest ?? []).map((e) => e.id);
    case 'alerts':
      return (snapshot.alerts ?? []).map((a) => a.id);
  }
}

/** The selected index: the item's new place when it moved, else the old index kept in range. */
export function resolveIndex(keys: readonly string[], selection: Selection): number {
  const at = selection.key === null ? -1 : keys.indexOf(selection.key);
  if (at >= 0) return at;
  return Math.max(0, Math.min(selection.index, keys.length - 1));
}

/** Moves the selection by `step` items (±Infinity: to the first or last). */
export function move(keys: readonly string[], selection: Selection, step: number): Selection {
  if (keys.length === 0) return { key: null, index: 0 };
  const from = resolveIndex(keys, selection);
  const index = step === -Infinity ? 0 : step === Infinity ? keys.length - 1 : Math.max(0, Math.min(keys.length - 1, from + step));
  return { key: keys[index]!, index };
}
