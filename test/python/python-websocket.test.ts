// Cross-language proof of the WebSocket wire format: a Python client (Debian's
// python3-websockets, messages generated from our protos with
// `protoc --python_out`) subscribes and sends over GET /ws while TypeScript
// sends and reads over Connect.
import type { ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatService, type ChatMessage } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { bearer, clientFor, transportFor } from "../helpers/clients.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { hasProtoc, hasPythonModules } from "../helpers/system.js";
import { generatePythonMessages, killAll, runPythonScript, type Line } from "./python-process.js";

const available = hasPythonModules(["websockets", "google.protobuf"], "python3-websockets python3-protobuf") && hasProtoc();

const script = fileURLToPath(new URL("ws_chat.py", import.meta.url));

describe.skipIf(!available)("a Python websockets client speaks rivulet.v1 frames", () => {
  let server: TestServer;
  let generated: string;
  let alice: string;
  const children = new Set<ChildProcess>();

  beforeAll(async () => {
    generated = generatePythonMessages();
    server = await startTestServer();
    alice = await server.token("alice");
  });
  afterAll(async () => {
    killAll(children);
    await server?.close();
    if (generated) rmSync(generated, { recursive: true, force: true });
  });

  /** Runs ws_chat.py against the server's /ws: its stdout as JSON lines, and how it ended. */
  const runPython = (args: readonly string[]) => runPythonScript(script, ["--url", `${server.url.replace(/^http/, "ws")}/ws`, ...args], generated, children);

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
    const python = runPython([
      "--token",
      await server.token("carol"),
      "--room",
      room,
      "--cursor",
      earlier[0]!.cursor,
      "--count",
      "3",
      "--send",
      "hello from Python ✓",
    ]);
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
