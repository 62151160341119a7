import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, it } from "vitest";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { hasProtoc, hasPythonModules } from "../helpers/system.js";
import { codeBlocks, type CodeBlock } from "./markdown-blocks.js";
import { runShellBlock, type ShellSession } from "./shell-block.js";

/** The shell blocks of a markdown file this suite runs: `sh` blocks not marked otherwise. */
export function runnableShellBlocks(file: string): CodeBlock[] {
  return codeBlocks(file).filter((block) => block.lang === "sh" && block.marker === undefined);
}

/** Whether the machine has what the blocks call beyond Node (Debian's Python with grpcio and websockets, protoc); skips or fails as test/helpers/system.ts says. */
function hasSystemDependencies(blocks: readonly CodeBlock[]): boolean {
  const text = blocks.map((block) => block.body).join("\n");
  if (/\bpython3\b/.test(text) && !hasPythonModules(["grpc", "google.protobuf", "websockets"], "python3-grpcio python3-protobuf python3-websockets"))
    return false;
  return !/\bprotoc\b/.test(text) || hasProtoc();
}

/**
 * Runs a markdown file's shell blocks in document order, as a reader would,
 * against a real server in development mode (what `npm start` runs) on a
 * free port: one test per block, variables carried from block to block.
 */
export function describeShellBlocks(file: string): void {
  const blocks = runnableShellBlocks(file);
  if (blocks.length === 0) return;
  describe.skipIf(!hasSystemDependencies(blocks))(`${file}'s shell blocks, run as written`, () => {
    let server: TestServer;
    let temp: string;
    let session: ShellSession;

    beforeAll(async () => {
      server = await startTestServer({ config: { authSecret: undefined } });
      // mktemp in a block writes here, removed afterwards.
      temp = mkdtempSync(join(tmpdir(), "rivulet-docs-"));
      session = { url: server.url, env: { TMPDIR: temp }, running: new Set(), servers: new Map() };
    });

    afterAll(async () => {
      for (const kill of session?.running ?? []) kill();
      await server?.close();
      if (temp) rmSync(temp, { recursive: true, force: true });
    });

    it.each(blocks.map((block) => [`${file}:${block.line}`, block] as const))("%s runs and prints what it promises", async (_, block) => {
      await runShellBlock(block, session);
    });
  });
}
