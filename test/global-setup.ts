import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

/** Newest modification time of any file under `dir`. */
function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) newest = Math.max(newest, statSync(join(entry.parentPath, entry.name)).mtimeMs);
  }
  return newest;
}

/**
 * The CLI tests spawn `bin/wcagai`, which runs dist/. Build it once per run when it is missing or
 * older than src/, so a test never passes or fails against yesterday's compiled code.
 */
export default function setup(): void {
  const entry = join(root, 'dist', 'cli', 'main.js');
  // tsc rewrites every output on each build, so one output's age stands for the whole tree.
  if (existsSync(entry) && statSync(entry).mtimeMs >= newestMtime(join(root, 'src'))) return;
  // The local compiler through the current node: no npx look-up, no PATH or shell involved.
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  try {
    execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'pipe' });
  } catch (err) {
    const out = err as { stdout?: Buffer; stderr?: Buffer };
    const log = `${out.stdout?.toString() ?? ''}${out.stderr?.toString() ?? ''}`;
    // tsc still emits on type errors, and catching those is the typecheck step's job: a half-edited
    // file elsewhere in src/ should not stop every test. Without an entry point there is nothing to run.
    if (!existsSync(entry)) throw new Error(`building dist/ for the CLI tests failed:\n${log}`);
    process.stderr.write(`global-setup: tsc reported errors; the CLI tests run on what it emitted:\n${log.split('\n').slice(0, 10).join('\n')}\n`);
  }
}
