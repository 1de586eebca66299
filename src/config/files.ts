import { accessSync, mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/** True when this process may access `path` in `mode` (fs.constants R_OK, X_OK, ...). */
export function canAccess(path: string, mode: number): boolean {
  try {
    accessSync(path, mode);
    return true;
  } catch {
    return false;
  }
}

/**
 * `mkdir -p`: creates `path` and its missing parents, one by one from the nearest one that
 * exists. Node's own recursive mkdir never returns under a directory that refuses every new entry
 * with ENOENT (`/proc/foo`); here that is an ENOENT error like any other.
 */
export function makeDirectory(path: string): void {
  const missing: string[] = [];
  for (let dir = resolve(path); ; dir = dirname(dir)) {
    try {
      // Something in the way that is not a directory (a file named like it) is refused as mkdir does.
      if (!statSync(dir).isDirectory()) throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${path}'`), { code: 'ENOTDIR' });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || dirname(dir) === dir) throw err;
      missing.unshift(dir);
    }
  }
  for (const dir of missing) {
    try {
      mkdirSync(dir);
    } catch (err) {
      // Made meanwhile by another process: as good as made here.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || !statSync(dir).isDirectory()) throw err;
    }
  }
}
