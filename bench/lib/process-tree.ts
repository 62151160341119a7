import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

/** Resident memory and CPU time of a process and all its descendants (a server's node:cluster workers), read from /proc. */
export interface TreeUsage {
  readonly processes: number;
  readonly rssBytes: number;
  /** User + system CPU seconds since each process started. */
  readonly cpuSeconds: number;
}

let clockTicks: number | undefined;
let pageBytes: number | undefined;
function getconf(name: string, fallback: number): number {
  const value = Number(spawnSync("getconf", [name], { encoding: "utf8" }).stdout?.trim());
  return Number.isFinite(value) && value > 0 ? value : fallback;
}

/** The fields of /proc/<pid>/stat after the command name (which may hold spaces and parentheses). */
function statFields(pid: number): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    return text.slice(text.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined; // exited meanwhile
  }
}

/**
 * Sums RSS and CPU over `root` and its descendants. A server with workers is
 * several processes (node:cluster), and its cost is theirs together; /proc also
 * reads processes that have no probe to ask.
 */
export function treeUsage(root: number): TreeUsage {
  clockTicks ??= getconf("CLK_TCK", 100);
  pageBytes ??= getconf("PAGESIZE", 4096);
  let processes = 0;
  let rssBytes = 0;
  let ticks = 0;
  for (const pid of treePids(root)) {
    const fields = statFields(pid);
    if (!fields) continue;
    processes++;
    ticks += Number(fields[11]) + Number(fields[12]);
    rssBytes += Number(fields[21]) * pageBytes;
  }
  return { processes, rssBytes, cpuSeconds: ticks / clockTicks };
}

/** `root` and its descendants, as /proc lists them now. */
export function treePids(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    // After the name: state (0), ppid (1), … utime (11), stime (12), … rss in pages (21).
    const ppid = Number(statFields(pid)?.[1]);
    if (!Number.isInteger(ppid)) continue;
    const list = children.get(ppid) ?? [];
    list.push(pid);
    children.set(ppid, list);
  }
  const pids: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.pop()!;
    if (!statFields(pid)) continue;
    pids.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return pids;
}

/** Waits (bounded) until none of `pids` is running: a primary's workers outlive it briefly and may still write to Redis. */
export async function waitForExit(pids: readonly number[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (pids.some((pid) => statFields(pid) !== undefined && statFields(pid)?.[0] !== "Z") && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
