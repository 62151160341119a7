// A gRPC client that is not connect-es: Python's grpcio (Debian's
// python3-grpcio) sends ChatService.Send, and the unary bridge
// (src/bridge/rpc/unary-bridge.ts) answers it, the success and a refusal,
// as grpcio expects (test/bridge/grpc-unary-bridge.test.ts checks the bytes
// against connect-node's).
import type { ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { metricValue, startTestServer, type TestServer } from "../helpers/server.js";
import { hasPythonModules, hasProtoc } from "../helpers/system.js";
import { generatePythonMessages, killAll, runPythonScript } from "./python-process.js";

const available = hasPythonModules(["grpc", "google.protobuf"], "python3-grpcio python3-protobuf") && hasProtoc();

const here = fileURLToPath(new URL(".", import.meta.url));

describe.skipIf(!available)("Python's grpcio publishes through the unary bridge", () => {
  let server: TestServer;
  let generated: string;
  const children = new Set<ChildProcess>();

  beforeAll(async () => {
    generated = generatePythonMessages();
    server = await startTestServer();
  });

  afterAll(async () => {
    killAll(children);
    await server?.close();
    if (generated) rmSync(generated, { recursive: true, force: true });
  });

  const bridged = () => metricValue(server.url, 'rivulet_unary_bridge_calls_total{protocol="grpc"}');
  const send = (token: string, text: string) =>
    runPythonScript(
      join(here, "chat_sender.py"),
      ["--target", `127.0.0.1:${server.port}`, "--token", token, "--room", "py-bridge", "--text", text, "--deadline", "60"],
      generated,
      children,
    );

  it("Send: the stored message comes back, and the bridge answered it", async () => {
    const before = await bridged();
    const python = send(await server.token("dana"), "through the bridge ✓");
    expect(await python.nextLine()).toMatchObject({ author: "dana", text: "through the bridge ✓" });
    const { code, stderr } = await python.exited;
    expect(code, stderr).toBe(0);
    expect(await bridged()).toBe(before + 1);
  });

  it("Send with a malformed token: grpcio reads UNAUTHENTICATED from the bridge's trailers", async () => {
    const before = await bridged();
    const { code, stderr } = await send("not-a-token", "never stored").exited;
    expect(code).not.toBe(0);
    expect(stderr).toMatch(/Send failed: UNAUTHENTICATED/);
    expect(await bridged()).toBe(before + 1);
  });
});
