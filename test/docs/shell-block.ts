import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { createInterface } from "node:readline";
import { expectedOutput, repoRoot, type CodeBlock } from "./markdown-blocks.js";

/** What the shell blocks of one markdown file share, in document order. */
export interface ShellSession {
  /** The server the docs' `localhost:8080` stands for, e.g. http://127.0.0.1:1234. */
  readonly url: string;
  /** Variables the blocks set so far (`TOKEN=…`, `export PYTHONPATH=…`), passed to the next ones. */
  readonly env: Record<string, string>;
  /** Kills what is still running (a failed test must not leave servers behind). */
  readonly running: Set<() => void>;
  /** Servers a server block started, by the port the docs gave them (`--port 8090`), e.g. 8090 → http://127.0.0.1:1234. */
  readonly servers: Map<number, string>;
}

/**
 * A documented command as the test runs it: `localhost:8080` is the test
 * server, `localhost:<port>` the server an earlier server block started with
 * `--port <port>`; `npm start` is the server `npm start` would run (dist/,
 * built by test/global-setup.ts) on a free loopback port; Redis is REDIS_URL.
 */
function rewrite(text: string, session: ShellSession): string {
  return text
    .replace(/http:\/\/(?:localhost|127\.0\.0\.1):(\d+)/g, (address, port: string) =>
      port === "8080" ? session.url : (session.servers.get(Number(port)) ?? address),
    )
    .replace(/^npm start(?: --)?/gm, `exec ${JSON.stringify(process.execPath)} dist/src/main.js`)
    .replace(/--port \d+/g, "--port 0 --host 127.0.0.1")
    .replace(/redis:\/\/127\.0\.0\.1:6379/g, process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
}

/** Whether the block is a set of servers, one per line, each for its own terminal (`npm start …`). */
export function isServerBlock(block: CodeBlock): boolean {
  const lines = block.body.split("\n").filter((line) => line.trim() !== "");
  return lines.length > 0 && lines.every((line) => line.startsWith("npm start"));
}

/** Spawns bash in its own process group (so curl and servers it starts die with it), killed via `session.running`. */
function spawnShell(script: string, session: ShellSession, extraEnv: Record<string, string> = {}) {
  const child = spawn("bash", ["-c", script], {
    cwd: repoRoot,
    env: { ...process.env, ...session.env, RIVULET_URL: session.url, ...extraEnv },
    stdio: ["ignore", "pipe", "pipe", "pipe"],
    detached: true,
  });
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid!, "SIGKILL");
  };
  session.running.add(kill);
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code) => {
      session.running.delete(kill);
      resolve(code);
    });
  });
  let stderr = "";
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  return { child, kill, exited, stderr: () => stderr };
}

/**
 * Runs one shell block as written (after `rewrite`). It passes when it exits
 * 0 and prints the output its comments promise; a block that streams forever
 * passes as soon as that output has appeared, and is then killed. Variables
 * it sets are kept in the session for the blocks after it.
 */
export async function runShellBlock(block: CodeBlock, session: ShellSession): Promise<string> {
  if (isServerBlock(block)) return runServers(block, session);
  const expected = expectedOutput(block.body);
  // `set -a` exports every variable the block sets; fd 3 returns them.
  const shell = spawnShell(`set -ea\n${rewrite(block.body, session)}\nenv -0 >&3`, session);
  let stdout = "";
  let variables = "";
  shell.child.stdio[3]!.on("data", (chunk: Buffer) => (variables += chunk.toString()));
  const matched = new Promise<void>((resolve) => {
    shell.child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
      if (expected?.test(stdout)) resolve();
    });
  });
  const where = `${block.file}:${block.line}`;
  const outcome = await Promise.race([matched.then(() => "matched" as const), shell.exited]);
  if (outcome === "matched") {
    shell.kill();
    await shell.exited;
    return stdout;
  }
  if (outcome !== 0) throw new Error(`${where} exited with ${outcome}:\n${stdout}\n${shell.stderr()}`);
  if (expected && !expected.test(stdout)) throw new Error(`${where} printed\n${stdout}\nnot ${expected}`);
  for (const entry of variables.split("\0")) {
    const equals = entry.indexOf("=");
    const [name, value] = [entry.slice(0, equals), entry.slice(equals + 1)];
    if (equals > 0 && process.env[name] !== value && name !== "RIVULET_URL" && name !== "_" && name !== "SHLVL") session.env[name] = value;
  }
  return stdout;
}

/**
 * Starts every line as its own server and waits until each logs that it
 * listens and answers /readyz with 200. A server stays up for the blocks
 * after it (which reach it by the `--port` the line gives) until the file's
 * blocks are done; a block that fails stops its servers at once.
 */
async function runServers(block: CodeBlock, session: ShellSession): Promise<string> {
  const lines = block.body.split("\n").filter((line) => line.trim() !== "");
  // Redis keys under a prefix of this run only, never the shared default.
  const env = { RIVULET_REDIS_PREFIX: `docs-${randomUUID()}:` };
  const servers = lines.map((line) => spawnShell(rewrite(line, session), session, env));
  try {
    const ports = await Promise.all(servers.map((server, i) => listeningPort(server, `${block.file}:${block.line} line ${i + 1}`)));
    for (const [i, port] of ports.entries()) {
      const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
      if (ready.status !== 200) throw new Error(`${block.file}:${block.line}: /readyz on ${port} answered ${ready.status}`);
      const documented = /--port (\d+)/.exec(lines[i]!)?.[1];
      if (documented !== undefined) session.servers.set(Number(documented), `http://127.0.0.1:${port}`);
    }
    return ports.join(" ");
  } catch (error) {
    for (const server of servers) server.kill();
    await Promise.all(servers.map((server) => server.exited));
    throw error;
  }
}

/** The port a starting server logs ("listening on …"); rejects with its stderr when it exits first. */
function listeningPort(server: ReturnType<typeof spawnShell>, where: string): Promise<number> {
  return new Promise((resolve, reject) => {
    createInterface({ input: server.child.stdout! }).on("line", (line) => {
      if (!line.startsWith("{")) return; // the server's log is JSON lines; it keeps logging here while it runs
      const entry = JSON.parse(line) as { msg?: unknown; port?: unknown };
      if (typeof entry.port === "number" && String(entry.msg).startsWith("listening on")) resolve(entry.port);
    });
    void server.exited.then((code) => reject(new Error(`${where} exited with ${code}: ${server.stderr()}`)));
  });
}
