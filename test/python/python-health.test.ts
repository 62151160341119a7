// Cross-language health: Python's grpcio (Debian's python3-grpcio, messages
// generated from proto/grpc/health/v1/health.proto with protoc) checks and
// watches grpc.health.v1.Health over h2c, with no credentials, across an
// outage of a Redis of the test's own.
import type { ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatService } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { redisServerAvailable, startPrivateRedis, uniquePrefix, type PrivateRedis } from "../broker/test-redis.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { hasProtoc, hasPythonModules } from "../helpers/system.js";
import { generatePythonMessages, killAll, runPythonScript, type PythonRun } from "./python-process.js";

const available = hasPythonModules(["grpc", "google.protobuf"], "python3-grpcio python3-protobuf") && hasProtoc() && redisServerAvailable();
const script = join(fileURLToPath(new URL(".", import.meta.url)), "health_check.py");
/** Seconds a Python client waits before giving up, so a broken server fails the test instead of hanging it. */
const pythonDeadline = "60";

describe.skipIf(!available)("a Python gRPC client (grpcio) checks and watches health", () => {
  let redis: PrivateRedis;
  let server: TestServer;
  let generated: string;
  const children = new Set<ChildProcess>();

  beforeAll(async () => {
    generated = generatePythonMessages();
    // Stopping Redis would break every other suite on the shared server: this one runs its own.
    redis = await startPrivateRedis();
    server = await startTestServer({ config: { broker: redis.url, redisPrefix: uniquePrefix() } });
  }, 60_000);

  afterAll(async () => {
    killAll(children);
    await server?.close();
    await redis?.stop();
    if (generated) rmSync(generated, { recursive: true, force: true });
  });

  const health = (args: readonly string[]): PythonRun =>
    runPythonScript(script, ["--target", `127.0.0.1:${server.port}`, "--deadline", pythonDeadline, ...args], generated, children);

  it("Check says SERVING for the server and for ChatService", async () => {
    for (const service of ["", ChatService.typeName]) {
      const python = health(["--service", service]);
      expect(await python.nextLine()).toEqual({ status: "SERVING" });
      const { code, stderr } = await python.exited;
      expect(code, stderr).toBe(0);
    }
  });

  it("Check fails with NOT_FOUND for an unknown service", async () => {
    const { code, stderr } = await health(["--service", "rivulet.nope.v1.NopeService"]).exited;
    expect(code).toBe(1);
    expect(stderr).toContain("Check failed: NOT_FOUND");
  });

  it("Watch prints SERVING, NOT_SERVING while Redis is down, then SERVING again", async () => {
    const python = health(["--service", ChatService.typeName, "--watch", "3"]);
    expect(await python.nextLine()).toEqual({ status: "SERVING" });
    await redis.stop();
    expect(await python.nextLine()).toEqual({ status: "NOT_SERVING" });
    await redis.start();
    expect(await python.nextLine()).toEqual({ status: "SERVING" });
    const { code, stderr } = await python.exited;
    expect(code, stderr).toBe(0);
  }, 60_000);
});
