import { accessSync } from 'node:fs';

/** True when this process may access `path` in `mode` (fs.constants R_OK, X_OK, ...). */
export function canAccess(path: string, mode: number): boolean {
  try {
    accessSync(path, mode);
    return true;
  } catch {
    return false;
  }
}
