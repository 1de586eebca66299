import { readdirSync, readFileSync } from 'node:fs';

interface ProcInfo {
  pid: number;
  ppid: number;
  state: string;
  comm: string;
  pgrp: number;
}

function readProc(pid: number): ProcInfo | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const open = stat.indexOf('(');
    const close = stat.lastIndexOf(')');
    const rest = stat.slice(close + 2).split(' ');
    return { pid, ppid: Number(rest[1]), state: rest[0] ?? '?', comm: stat.slice(open + 1, close), pgrp: Number(rest[2]) };
  } catch {
    return undefined;
  }
}

function allProcs(): ProcInfo[] {
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .map((e) => readProc(Number(e)))
    .filter((p): p is ProcInfo => p !== undefined);
}

/** True while `pid` exists and is not a zombie (a zombie has exited and holds nothing but its pid). */
export function isAlive(pid: number): boolean {
  const info = readProc(pid);
  return info !== undefined && info.state !== 'Z' && info.state !== 'X';
}

/** Live descendants of `root` (not `root` itself), found through /proc parent links. */
export function descendants(root: number): ProcInfo[] {
  const procs = allProcs();
  const children = new Map<number, ProcInfo[]>();
  for (const p of procs) {
    const list = children.get(p.ppid) ?? [];
    list.push(p);
    children.set(p.ppid, list);
  }
  const out: ProcInfo[] = [];
  const stack = [...(children.get(root) ?? [])];
  while (stack.length) {
    const p = stack.pop()!;
    if (p.state !== 'Z' && p.state !== 'X') out.push(p);
    stack.push(...(children.get(p.pid) ?? []));
  }
  return out;
}

/** A browser's process tree: the browser's pid and every live descendant's (zygotes, renderers, utilities). */
export function browserTree(browserPid: number): number[] {
  return [browserPid, ...descendants(browserPid).map((p) => p.pid)];
}

/** Live Chromium processes that descend from this test process. */
export function ourChromiumProcesses(): ProcInfo[] {
  return descendants(process.pid).filter((p) => /chrom/i.test(p.comm));
}

/** Polls until `pids` are all gone (or the deadline passes); returns those still alive. */
export async function waitForExit(pids: readonly number[], timeoutMs = 5_000): Promise<number[]> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const alive = pids.filter(isAlive);
    if (alive.length === 0 || Date.now() >= until) return alive;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Live members of a process group (Chromium leads its own); zombies have exited and do not count. */
export function groupMembers(pgid: number): number[] {
  return allProcs()
    .filter((p) => p.pgrp === pgid && p.state !== 'Z' && p.state !== 'X')
    .map((p) => p.pid);
}
