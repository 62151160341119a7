// Cross-language proof: a Python gRPC client (Debian's python3-grpcio, messages
// generated from our protos with `protoc --python_out`) and a TypeScript client
// talk to the same room over h2c gRPC, in both directions.
import type { ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatService, type ChatMessage } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { hasPythonModules, hasProtoc } from "../helpers/system.js";
import { generatePythonMessages, killAll, runPythonScript, type Line, type PythonRun } from "./python-process.js";

const available = hasPythonModules(["grpc", "google.protobuf"], "python3-grpcio python3-protobuf") && hasProtoc();

const here = fileURLToPath(new URL(".", import.meta.url));
/** Seconds a Python client waits before giving up, so a broken server fails the test instead of hanging it. */
const pythonDeadline = "60";

describe.skipIf(!available)("a Python gRPC client (grpcio) and a TypeScript client share a room over h2c", () => {
  let server: TestServer;
  let generated: string;
  let ts: Client<typeof ChatService>;
  let alice: { headers: { authorization: string } };
  const children = new Set<ChildProcess>();

  beforeAll(async () => {
    generated = generatePythonMessages();
    server = await startTestServer();
    // connect-node's gRPC transport always speaks HTTP/2: h2c for an http:// URL.
    ts = createClient(ChatService, createGrpcTransport({ baseUrl: server.url }));
    alice = { headers: { authorization: `Bearer ${await server.token("alice")}` } };
  });

  afterAll(async () => {
    killAll(children);
    await server?.close();
    if (generated) rmSync(generated, { recursive: true, force: true });
  });

  /** Runs test/python/<script> with Debian's Python and the generated messages on its path. */
  const runPython = (script: string, args: readonly string[]): PythonRun => runPythonScript(join(here, script), args, generated, children);

  /** The script exited 0 (its stderr explains a failure). */
  async function expectSuccess(python: PythonRun): Promise<void> {
    const { code, stderr } = await python.exited;
    expect(code, stderr).toBe(0);
  }

  /** Common arguments of both scripts. */
  function target(token: string, room: string): string[] {
    return ["--target", `127.0.0.1:${server.port}`, "--token", token, "--room", room, "--deadline", pythonDeadline];
  }

  /** Sends texts one after another from TypeScript over gRPC, as alice. */
  async function sendAll(room: string, texts: readonly string[]): Promise<ChatMessage[]> {
    const sent: ChatMessage[] = [];
    for (const text of texts) {
      const { message } = await ts.send({ room, text }, alice);
      if (!message) throw new Error("Send returned no message");
      sent.push(message);
    }
    return sent;
  }

  /** The line chat_subscriber.py prints for a message. */
  function lineOf(message: ChatMessage): Line {
    return { cursor: message.cursor, id: message.id, author: message.author, text: message.text };
  }

  it("a Python subscriber receives what TypeScript sends, in order, with authors and cursors", async () => {
    const room = "py-live";
    // The subscriber replays this one message first: its arrival proves the
    // stream is open and the live feed attached, with no sleep.
    const [marker] = await sendAll(room, ["before the subscriber"]);
    const texts = ["one", "two", "three: ünïcödé ✓", "four", "five"];
    const python = runPython("chat_subscriber.py", [...target(await server.token("bob"), room), "--history", "1", "--count", String(texts.length + 1)]);

    expect(await python.nextLine()).toEqual({ ready: true });
    expect(await python.nextLine()).toEqual(lineOf(marker!));

    const sent = await sendAll(room, texts);
    const received: Line[] = [];
    for (let i = 0; i < texts.length; i++) received.push(await python.nextLine());

    expect(received).toEqual(sent.map(lineOf));
    expect(received.map((line) => line.author)).toEqual(texts.map(() => "alice"));
    expect(received.map((line) => line.text)).toEqual(texts);
    expect(new Set(received.map((line) => line.cursor)).size).toBe(texts.length);
    await expectSuccess(python);
  });

  it("a Python subscriber resumes after a cursor with exactly the messages after it", async () => {
    const room = "py-resume";
    const sent = await sendAll(room, ["m1", "m2", "m3", "m4", "m5", "m6"]);
    const python = runPython("chat_subscriber.py", [
      ...target(await server.token("bob"), room),
      "--cursor",
      sent[1]!.cursor,
      "--count",
      String(sent.length - 2),
    ]);

    expect(await python.nextLine()).toEqual({ ready: true });
    const received: Line[] = [];
    for (let i = 2; i < sent.length; i++) received.push(await python.nextLine());

    expect(received).toEqual(sent.slice(2).map(lineOf));
    await expectSuccess(python);
  });

  it("a TypeScript subscriber receives what Python sends", async () => {
    const room = "py-send";
    const [marker] = await sendAll(room, ["before the subscriber"]);
    const abort = new AbortController();
    try {
      const stream = ts.subscribe({ room, history: 1 }, { ...alice, signal: abort.signal })[Symbol.asyncIterator]();
      // As above: the replayed message says the subscription is live.
      const first = await stream.next();
      expect(first.done).toBe(false);
      expect(first.value?.cursor).toBe(marker!.cursor);

      const python = runPython("chat_sender.py", [...target(await server.token("carol"), room), "--text", "hello from Python ✓"]);
      const stored = await python.nextLine();
      await expectSuccess(python);
      expect(stored).toMatchObject({ author: "carol", text: "hello from Python ✓" });

      const next = await stream.next();
      expect(next.done).toBe(false);
      const response = next.value!;
      expect(response.event.case).toBe("message");
      expect(response.cursor).toBe(stored.cursor);
      expect(response.event.value).toMatchObject({
        id: stored.id,
        room,
        author: "carol",
        text: "hello from Python ✓",
        cursor: stored.cursor,
      });
    } finally {
      abort.abort();
    }
  });

  it("a token signed with another secret makes the Python subscriber exit with UNAUTHENTICATED", async () => {
    const forged = await new SignJWT({ roles: [] })
      .setProtectedHeader({ alg: "HS256" })
      .setSubject("mallory")
      .setExpirationTime("1h")
      .sign(new TextEncoder().encode("not-the-server-secret-but-32-bytes-long"));
    const python = runPython("chat_subscriber.py", [...target(forged, "py-auth"), "--history", "1", "--count", "1"]);

    await expect(python.nextLine()).rejects.toThrow(/UNAUTHENTICATED/);
    const { code, stderr } = await python.exited;
    expect(code).not.toBe(0);
    expect(stderr).toMatch(/Subscribe failed: UNAUTHENTICATED/);
  });

  it("a malformed token makes the Python sender exit with UNAUTHENTICATED and posts nothing", async () => {
    const room = "py-auth-send";
    const python = runPython("chat_sender.py", [...target("not-a-token", room), "--text", "never stored"]);

    const { code, stderr } = await python.exited;
    expect(code).not.toBe(0);
    expect(stderr).toMatch(/Send failed: UNAUTHENTICATED/);

    const [marker] = await sendAll(room, ["after the rejected send"]);
    const abort = new AbortController();
    try {
      const stream = ts.subscribe({ room, history: 10 }, { ...alice, signal: abort.signal })[Symbol.asyncIterator]();
      const first = await stream.next();
      expect(first.value?.cursor).toBe(marker!.cursor);
    } finally {
      abort.abort();
    }
  });
});
