import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository's root: processes run from it so relative paths resolve. */
export const repoRoot = fileURLToPath(new URL("../../", import.meta.url));

/**
 * Where `npm run build` put the JavaScript of a TypeScript file of the
 * repository. Bench processes run compiled, under plain Node, as production
 * does (`npm start`): under tsx, esbuild's keepNames gives every function a
 * `name` property by defineProperty, which turns each closure's properties
 * into a dictionary (about 250 bytes more per closure, and slower to create),
 * and would make every server look slower and bigger than it is.
 */
export function compiled(script: string): string {
  return join(repoRoot, "dist", script.replace(/\.ts$/, ".js"));
}
const probePath = compiled("bench/lib/probe.ts");

/** Servers run on core 0, load generators and the publisher on core 1 (when there are two cores and taskset). */
export const serverCore = 0;
/** The core of the load generators and the orchestrator (the publisher). */
export const loadCore = 1;

let tasksetWorks: boolean | undefined;
/** Whether processes can be pinned: `taskset` exists and the machine has at least two cores. */
export function canPin(): boolean {
  tasksetWorks ??= availableParallelism() >= 2 && spawnSync("taskset", ["-c", "0", "true"]).status === 0;
  return tasksetWorks;
}

/** A child process the bench talks to over IPC. */
export interface BenchProcess {
  readonly child: ChildProcess;
  /** The ports it printed (`"port":N`, optionally `"controlPort":N`, in a stdout line), once it listens. */
  readonly ports: Promise<{ readonly port: number; readonly controlPort: number }>;
  /** Sends `message` and resolves with the next message whose `type` is `replyType`. */
  ask<T>(message: object, replyType: string, timeoutMs?: number): Promise<T>;
  /** Everything it wrote to stderr so far (last 4 KiB). */
  stderr(): string;
  /** SIGTERM, then SIGKILL after a second; resolves when it has exited. */
  stop(): Promise<void>;
}

/** What to run and where. */
export interface SpawnOptions {
  /** A TypeScript file, relative to the repository root: its compiled JavaScript in dist/ runs (`npm run build`). */
  readonly script: string;
  readonly args?: readonly string[];
  /** The core to pin it to (ignored where pinning is unavailable); undefined: not pinned (a server whose workers use every core). */
  readonly core: number | undefined;
  /** Preload the stats probe (server processes). */
  readonly probe?: boolean;
  readonly env?: Readonly<Record<string, string>>;
  /** More node flags (`--cpu-prof`, …). */
  readonly nodeArgs?: readonly string[];
}

/** Starts a bench process (compiled, with an IPC channel, optionally the probe), pinned where possible. */
export function spawnBenchProcess(options: SpawnOptions): BenchProcess {
  const nodeArgs = [
    ...(options.nodeArgs ?? []),
    ...(options.probe ? ["--expose-gc", "--import", probePath] : []),
    compiled(options.script),
    ...(options.args ?? []),
  ];
  const [command, args] =
    canPin() && options.core !== undefined ? ["taskset", ["-c", String(options.core), process.execPath, ...nodeArgs]] : [process.execPath, nodeArgs];
  const child = spawn(command, args, {
    cwd: repoRoot,
    stdio: ["ignore", "pipe", "pipe", "ipc"],
    env: { ...process.env, ...options.env },
  });
  let stderrTail = "";
  // The start of stderr too: a refused flag's one-line reason is followed by a usage text longer than the tail keeps.
  let stderrHead = "";
  child.stderr?.setEncoding("utf8").on("data", (text: string) => {
    stderrTail = (stderrTail + text).slice(-4096);
    if (stderrHead.length < 1024) stderrHead += text.slice(0, 1024 - stderrHead.length);
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const ports = new Promise<{ port: number; controlPort: number }>((resolve, reject) => {
    let buffered = "";
    child.stdout?.setEncoding("utf8").on("data", (text: string) => {
      buffered = (buffered + text).slice(-8192);
      const match = /"port":(\d+)/.exec(buffered);
      if (match) {
        const control = /"controlPort":(\d+)/.exec(buffered);
        resolve({ port: Number(match[1]), controlPort: Number(control?.[1] ?? match[1]) });
      }
    });
    // The first stderr line says why (a refused flag, a broker that cannot start); usage text follows it.
    child.once("exit", (code, signal) =>
      reject(new Error(`${options.script} exited (${signal ?? code}) before listening: ${stderrHead.trim().split("\n")[0] ?? ""}`)),
    );
  });
  ports.catch(() => undefined);
  const waiters: { type: string; resolve: (value: unknown) => void }[] = [];
  child.on("message", (message: { type?: string }) => {
    const index = waiters.findIndex((w) => w.type === message.type);
    if (index >= 0) waiters.splice(index, 1)[0]!.resolve(message);
  });
  return {
    child,
    ports,
    ask<T>(message: object, replyType: string, timeoutMs = 120_000) {
      return new Promise<T>((resolve, reject) => {
        if (!child.connected) {
          reject(new Error(`${options.script} is not running: ${stderrTail.trim().split("\n").slice(-3).join(" | ")}`));
          return;
        }
        const timer = setTimeout(() => reject(new Error(`${options.script} did not answer ${replyType} in ${timeoutMs} ms`)), timeoutMs);
        const onExit = () => {
          clearTimeout(timer);
          reject(new Error(`${options.script} exited while asked for ${replyType}: ${stderrTail.trim().split("\n").slice(-3).join(" | ")}`));
        };
        child.once("exit", onExit);
        waiters.push({
          type: replyType,
          resolve: (value) => {
            clearTimeout(timer);
            child.off("exit", onExit);
            resolve(value as T);
          },
        });
        child.send(message);
      });
    },
    stderr: () => stderrTail,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 1000);
      await exited;
      clearTimeout(timer);
    },
  };
}
