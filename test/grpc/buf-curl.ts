import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

/** The buf CLI `npm install` puts in node_modules (@bufbuild/buf). */
const bufBin = fileURLToPath(new URL("../../node_modules/.bin/buf", import.meta.url));

/** A running `buf curl`: its output read as it comes, and how it ended. */
export interface BufCurl {
  /** The next output line; rejects (with stderr) when the output ends first. */
  nextLine(): Promise<string>;
  /**
   * The next response, read from the output as buf curl prints it: one
   * pretty-printed JSON object per message, closed by a `}` alone on a line.
   */
  nextObject(): Promise<Record<string, unknown>>;
  /** Every remaining line once the process exits, with its exit code and stderr. */
  readonly exited: Promise<{ code: number | null; lines: string[]; stderr: string }>;
  readonly process: ChildProcess;
}

/**
 * Runs `buf curl --protocol grpc --http2-prior-knowledge <args>`: gRPC on
 * h2c, the schema from server reflection (buf curl's default). Kill it with
 * `process.kill()` when a stream has said enough; `children` tracks it.
 */
export function runBufCurl(args: readonly string[], children: Set<ChildProcess>): BufCurl {
  const child = spawn(bufBin, ["curl", "--protocol", "grpc", "--http2-prior-knowledge", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const exited = new Promise<{ code: number | null; lines: string[]; stderr: string }>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code) => {
      children.delete(child);
      void (async () => {
        const rest: string[] = [];
        for (let next = await lines.next(); !next.done; next = await lines.next()) rest.push(next.value);
        resolve({ code, lines: rest, stderr });
      })();
    });
  });
  async function nextLine(): Promise<string> {
    const next = await lines.next();
    if (next.done) throw new Error(`buf curl ended its output (${(await exited).code}): ${stderr.trim()}`);
    return next.value;
  }
  return {
    process: child,
    exited,
    nextLine,
    async nextObject() {
      let text = "";
      for (let line = await nextLine(); ; line = await nextLine()) {
        text += `${line}\n`;
        if (line === "}") return JSON.parse(text) as Record<string, unknown>;
      }
    },
  };
}
