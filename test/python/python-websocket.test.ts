// Cross-language proof of the WebSocket wire format: a Python client (Debian's
// python3-websockets, messages generated from our protos with
// `protoc --python_out`) subscribes and sends over GET /ws while TypeScript
// sends and reads over Connect.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatService, type ChatMessage } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { bearer, clientFor, transportFor } from "../helpers/clients.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { debianPython, hasProtoc, hasPythonModules } from "../helpers/system.js";

const available = hasPythonModules(["websockets", "google.protobuf"], "python3-websockets python3-protobuf") && hasProtoc();

const script = fileURLToPath(new URL("ws_chat.py", import.meta.url));
const protoRoot = fileURLToPath(new URL("../../proto", import.meta.url));
const bufBin = fileURLToPath(new URL("../../node_modules/.bin/buf", import.meta.url));

type Line = Record<string, unknown>;

describe.skipIf(!available)("a Python websockets client speaks rivulet.v1 frames", () => {
  let server: TestServer;
  let generated: string;
  let alice: string;
  const children = new Set<ChildProcess>();

  beforeAll(async () => {
    generated = mkdtempSync(join(tmpdir(), "rivulet-python-ws-"));
    // As python-grpc.test.ts: protoc reads a descriptor set buf builds with its imports, so no libprotobuf-dev is needed.
    const protos = readdirSync(protoRoot, { recursive: true, encoding: "utf8" }).filter((file) => file.endsWith(".proto"));
    const descriptorSet = join(generated, "rivulet.binpb");
    execFileSync(bufBin, ["build", protoRoot, "-o", descriptorSet]);
    execFileSync("protoc", [`--python_out=${generated}`, `--descriptor_set_in=${descriptorSet}`, ...protos]);
    server = await startTestServer();
    alice = await server.token("alice");
  });
  afterAll(async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill();
    await server?.close();
    if (generated) rmSync(generated, { recursive: true, force: true });
  });

  /** Runs ws_chat.py: its stdout as JSON lines, and how it ended. */
  function runPython(args: readonly string[]) {
    const child = spawn(debianPython, [script, "--url", `${server.url.replace(/^http/, "ws")}/ws`, ...args], {
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
      async nextLine(): Promise<Line> {
        const next = await lines.next();
        if (next.done) throw new Error(`ws_chat.py ended its output (exit code ${(await exited).code}): ${stderr.trim()}`);
        return JSON.parse(next.value) as Line;
      },
      /** Every line until the script exits. */
      async rest(): Promise<Line[]> {
        const all: Line[] = [];
        for (let next = await lines.next(); !next.done; next = await lines.next()) all.push(JSON.parse(next.value) as Line);
        return all;
      },
    };
  }

  const chat = () => clientFor(ChatService, transportFor(server.url, "connect", "1.1"));
  const lineOf = (m: ChatMessage) => ({ cursor: m.cursor, id: m.id, author: m.author, text: m.text });
  async function sendAll(room: string, texts: readonly string[]): Promise<ChatMessage[]> {
    const sent: ChatMessage[] = [];
    for (const text of texts) sent.push((await chat().send({ room, text }, bearer(alice))).message!);
    return sent;
  }

  it("receives what TypeScript sends, in order, with cursors in the frame and the message", async () => {
    const room = "py-ws-live";
    const [marker] = await sendAll(room, ["before the subscriber"]);
    const texts = ["one", "two", "three: ünïcödé ✓"];
    const python = runPython(["--token", await server.token("bob"), "--room", room, "--history", "1", "--count", String(texts.length + 1)]);
    expect(await python.nextLine()).toEqual({ ready: true });
    expect(await python.nextLine()).toEqual(lineOf(marker!));
    const sent = await sendAll(room, texts);
    const received: Line[] = [];
    for (const _ of texts) received.push(await python.nextLine());
    expect(received).toEqual(sent.map(lineOf));
    expect((await python.exited).code).toBe(0);
  });

  it("sends on the same socket it subscribes on, and resumes after a cursor", async () => {
    const room = "py-ws-send";
    const earlier = await sendAll(room, ["m1", "m2", "m3"]);
    const python = runPython(["--token", await server.token("carol"), "--room", room, "--cursor", earlier[0]!.cursor, "--count", "3", "--send", "hello from Python ✓"]);
    const lines = await python.rest();
    const { code, stderr } = await python.exited;
    expect(code, stderr).toBe(0);
    expect(lines[0]).toEqual({ ready: true });
    const sent = lines.find((line) => "sent" in line)?.sent as Line;
    expect(sent).toMatchObject({ author: "carol", text: "hello from Python ✓" });
    // The subscription resumed after m1: m2, m3, then the message Python sent, each once and in order.
    const received = lines.slice(1).filter((line) => !("sent" in line));
    expect(received).toEqual([lineOf(earlier[1]!), lineOf(earlier[2]!), sent]);
  });

  it("exits with the call's Connect code when the token is not valid", async () => {
    const python = runPython(["--token", "not-a-token", "--room", "py-ws-auth", "--history", "1", "--count", "1"]);
    const { code, stderr } = await python.exited;
    expect(code).toBe(1);
    expect(stderr).toMatch(/Subscribe failed: unauthenticated: /);
  });
});
