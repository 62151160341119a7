import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { debianPython } from "../helpers/system.js";
import { testTempDir } from "../helpers/temp-dir.js";

const protoRoot = fileURLToPath(new URL("../../proto", import.meta.url));
const bufBin = fileURLToPath(new URL("../../node_modules/.bin/buf", import.meta.url));

/** One JSON line a Python script printed. */
export type Line = Record<string, unknown>;

/** A running Python script: its stdout as JSON lines, and how it ended. */
export interface PythonRun {
  /** The next stdout line, parsed; rejects (with stderr) when stdout ends first. */
  nextLine(): Promise<Line>;
  /** Every remaining line until the script exits. */
  rest(): Promise<Line[]>;
  /** Resolves when the process has exited and its output is closed. */
  readonly exited: Promise<{ code: number | null; stderr: string }>;
}

/**
 * Python modules (`protoc --python_out`) for every proto, in a new temp dir.
 * protoc reads a descriptor set that buf builds with the imports
 * (google/protobuf/*.proto) included, so no libprotobuf-dev is needed;
 * Python's own google.protobuf package provides those modules at run time.
 */
export function generatePythonMessages(): string {
  const generated = testTempDir("rivulet-python-");
  const protos = readdirSync(protoRoot, { recursive: true, encoding: "utf8" }).filter((file) => file.endsWith(".proto"));
  const descriptorSet = join(generated, "rivulet.binpb");
  execFileSync(bufBin, ["build", protoRoot, "-o", descriptorSet]);
  execFileSync("protoc", [`--python_out=${generated}`, `--descriptor_set_in=${descriptorSet}`, ...protos]);
  return generated;
}

/** Runs a script with Debian's Python and the generated messages on its path; `children` tracks it until it exits. */
export function runPythonScript(script: string, args: readonly string[], generated: string, children: Set<ChildProcess>): PythonRun {
  const child = spawn(debianPython, [script, ...args], {
    env: { ...process.env, PYTHONPATH: generated, PYTHONDONTWRITEBYTECODE: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const exited = new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code) => {
      children.delete(child);
      resolve({ code, stderr });
    });
  });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  return {
    exited,
    async nextLine() {
      const next = await lines.next();
      if (next.done) throw new Error(`${script} ended its output (exit code ${(await exited).code}): ${stderr.trim()}`);
      return JSON.parse(next.value) as Line;
    },
    async rest() {
      const all: Line[] = [];
      for (let next = await lines.next(); !next.done; next = await lines.next()) all.push(JSON.parse(next.value) as Line);
      return all;
    },
  };
}

/** Kills the scripts still running (a failed test must not leave them behind). */
export function killAll(children: Set<ChildProcess>): void {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill();
}
