import { constants, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { canAccess } from '../config/files.js';
import { WcagaiError } from '../errors/catalogue.js';

/**
 * Refuses, before any work starts, an output file that could not be written: a run of minutes
 * (a scan of many pages, a stress or leak run) must not end in "cannot write" with its result lost.
 */
export function checkOutputFile(path: string, flag: string): void {
  const full = resolve(path);
  const fail = (why: string) => {
    throw new WcagaiError('USAGE', `${flag} ${path}: ${why}`);
  };
  // resolve() drops a trailing slash: "new-dir/" would pass as a file to create in the current directory.
  if (/[\\/]$/.test(path)) fail('names a directory, not a file');
  let isDirectory = false;
  try {
    isDirectory = statSync(full).isDirectory();
  } catch {
    // Not there yet: its directory must be.
    const dir = dirname(full);
    let dirOk = false;
    try {
      dirOk = statSync(dir).isDirectory();
    } catch {
      // no such directory
    }
    if (!dirOk) fail(`no directory ${dirname(path)} to write it in`);
    if (!canAccess(dir, constants.W_OK)) fail(`cannot write in ${dirname(path)}`);
    return;
  }
  if (isDirectory) fail('is a directory');
  if (!canAccess(full, constants.W_OK)) fail('cannot write it (permission denied)');
}
