// Client deadlines on every Connect, gRPC and gRPC-Web path (the direct
// stream writer and connect-node): a deadline past --max-timeout is lowered
// to it, and none reaches a timer past setTimeout's range (2^31-1 ms), which
// Node would fire after 1 ms.
import { Code, ConnectError, type Transport } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatService, type SubscribeResponse } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { allTransports, bearer, clientFor } from "../helpers/clients.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const textOf = (r: SubscribeResponse) => (r.event.case === "message" ? r.event.value.text : `<${r.event.case}>`);

/** Every path: Connect binary, gRPC and gRPC-Web on HTTP/1.1 and h2c, and Connect JSON (connect-node's, not the direct writer's). */
function everyPath(baseUrl: string): { name: string; transport: Transport }[] {
  return [
    ...allTransports(baseUrl),
    { name: "connect JSON over HTTP/2", transport: createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: false }) },
  ];
}

/**
 * The deadline header itself: connect-es's clients arm their own copy of a
 * `timeoutMs` as one timer too, which would overflow on the client's side.
 */
function deadlineHeader(name: string, ms: number): Record<string, string> {
  return name.startsWith("connect") ? { "connect-timeout-ms": String(ms) } : { "grpc-timeout": `${ms / 1000}S` };
}

/** The stream's error code, or "open" when it is still open after a send and its delivery (a round trip through the server). */
async function afterRoundTrip(transport: Transport, room: string, headers: Record<string, string>): Promise<string> {
  const chat = clientFor(ChatService, transport);
  await chat.send({ room, text: "ping" }, { headers });
  // From history, so the stream is surely joined before the next send.
  const stream = chat.subscribe({ room, history: 1 }, { headers })[Symbol.asyncIterator]();
  try {
    expect(textOf((await stream.next()).value as SubscribeResponse)).toBe("ping");
    await chat.send({ room, text: "pong" }, { headers });
    expect(textOf((await stream.next()).value as SubscribeResponse)).toBe("pong");
    return "open";
  } catch (error) {
    return Code[ConnectError.from(error).code];
  } finally {
    await stream.return?.();
  }
}

describe("a deadline past setTimeout's range", () => {
  let server: TestServer;
  let token: string;
  beforeAll(async () => {
    // As `--max-timeout 1000h` ran before the flag had a bound (the test server takes its config unchecked).
    server = await startTestServer({ config: { maxTimeoutMs: 1000 * 3_600_000 } });
    token = await server.token("alice");
  });
  afterAll(() => server.close());

  it.each(everyPath("http://placeholder").map((p) => p.name))(
    "%s: a stream asking a 2200000000 ms deadline is still open after a message round trip",
    async (name) => {
      const { transport } = everyPath(server.url).find((p) => p.name === name)!;
      const headers = { ...bearer(token).headers, ...deadlineHeader(name, 2_200_000_000) };
      expect(await afterRoundTrip(transport, `long-deadline-${name.replace(/[^a-z0-9]+/gi, "-")}`, headers)).toBe("open");
    },
  );
});

describe("a deadline over --max-timeout", () => {
  let server: TestServer;
  let token: string;
  beforeAll(async () => {
    server = await startTestServer({ config: { maxTimeoutMs: 1000 } });
    token = await server.token("alice");
  });
  afterAll(() => server.close());

  it.each(everyPath("http://placeholder").map((p) => p.name))(
    "%s: is lowered to it: the call runs, and a stream then ends with deadline_exceeded",
    async (name) => {
      const { transport } = everyPath(server.url).find((p) => p.name === name)!;
      const chat = clientFor(ChatService, transport);
      const room = `clamped-${name.replace(/[^a-z0-9]+/gi, "-")}`;
      expect((await chat.send({ room, text: "x" }, { ...bearer(token), timeoutMs: 60_000 })).message?.text).toBe("x");
      const failure = await (async () => {
        for await (const _ of chat.subscribe({ room }, { ...bearer(token), timeoutMs: 60_000 })) void _;
      })().then(
        () => "ended without error",
        (error: unknown) => Code[ConnectError.from(error).code],
      );
      expect(failure).toBe("DeadlineExceeded");
    },
  );
});
