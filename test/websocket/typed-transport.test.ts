// The typed client: connect-es's createClient over createWebSocketTransport,
// against the real server. The server side of a socket is reached through the
// bridge's diagnostics channel, to kill it mid-stream the way a dropped
// connection would.
import { subscribe as subscribeChannel, unsubscribe as unsubscribeChannel } from "node:diagnostics_channel";
import { fromBinary } from "@bufbuild/protobuf";
import { Code, createClient } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { ClientFrameSchema } from "../../gen/rivulet/bridge/v1/bridge_pb.js";
import { ChatService, type CompleteResponse, type SubscribeResponse } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { CounterService } from "../../gen/rivulet/testing/v1/counter_pb.js";
import { websocketOpenChannel } from "../../src/bridge/websocket/bridge.js";
import { createWebSocketTransport, type WebSocketTransport, type WebSocketTransportState } from "../../src/client/websocket-transport.js";
import { bearer, clientFor, collect, take, transportFor } from "../helpers/clients.js";
import { counterService } from "../helpers/counter-service.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const textsOf = (responses: readonly SubscribeResponse[]) => responses.map((r) => (r.event.case === "message" ? r.event.value.text : `<${r.event.case}>`));

/** Server-side sockets as they open, so a test can kill one. */
function watchServerSockets() {
  const sockets: WebSocket[] = [];
  const waiters = new Set<() => void>();
  const listener = (message: unknown) => {
    sockets.push((message as { socket: WebSocket }).socket);
    for (const waiter of [...waiters]) waiter();
  };
  subscribeChannel(websocketOpenChannel.name, listener);
  return {
    sockets,
    /** The n-th socket to open (1-based), now or when it opens. */
    nth(n: number): Promise<WebSocket> {
      return new Promise((resolve) => {
        const check = () => {
          const socket = sockets[n - 1];
          if (!socket) return;
          waiters.delete(check);
          resolve(socket);
        };
        waiters.add(check);
        check();
      });
    },
    stop: () => unsubscribeChannel(websocketOpenChannel.name, listener),
  };
}

describe("createWebSocketTransport with generated clients", () => {
  let server: TestServer;
  let token: string;
  const transports: WebSocketTransport[] = [];

  beforeAll(async () => {
    server = await startTestServer({ extraServices: () => [counterService()] });
    token = await server.token("alice");
  });
  afterAll(async () => {
    for (const transport of transports) transport.close();
    await server.close();
  });

  function wsTransport(onStateChange?: (state: WebSocketTransportState) => void): WebSocketTransport {
    const transport = createWebSocketTransport({
      url: `${server.url.replace(/^http/, "ws")}/ws?access_token=${encodeURIComponent(token)}`,
      WebSocket,
      backoffInitialMs: 50,
      backoffMaxMs: 500,
      onStateChange,
    });
    transports.push(transport);
    return transport;
  }

  it("makes unary and server-streaming calls over one socket, with Connect errors", async () => {
    const counter = createClient(CounterService, wsTransport());
    expect((await counter.echo({ text: "hi" })).text).toBe("hi");
    expect((await collect(counter.count({ to: 5 }))).map((r) => r.value)).toEqual([1, 2, 3, 4, 5]);
    expect((await take(counter.count({ to: 1000 }), 3)).map((r) => r.value)).toEqual([1, 2, 3]);
    await expect(counter.echo({ text: "" })).rejects.toMatchObject({ code: Code.InvalidArgument, rawMessage: "text is required" });
    await expect(collect(counter.count({ to: 0 }))).rejects.toMatchObject({ code: Code.InvalidArgument });

    const chat = createClient(ChatService, wsTransport());
    const room = "typed-basic";
    const abort = new AbortController();
    const stream = chat.subscribe({ room, history: 1 }, { signal: abort.signal })[Symbol.asyncIterator]();
    const sent = await chat.send({ room, text: "typed hello" });
    expect(sent.message).toMatchObject({ room, text: "typed hello", author: "alice" });
    expect(sent.message?.id).not.toBe("");
    const first = await stream.next();
    expect(textsOf([first.value as SubscribeResponse])).toEqual(["typed hello"]);
    abort.abort();
    await expect(stream.next()).rejects.toMatchObject({ code: Code.Canceled });
  });

  it("answers calls whose signal is already aborted with canceled, and sends nothing", async () => {
    const counter = createClient(CounterService, wsTransport());
    const signal = AbortSignal.abort();
    await expect(counter.echo({ text: "x" }, { signal })).rejects.toMatchObject({ code: Code.Canceled });
    await expect(collect(counter.count({ to: 3 }, { signal }))).rejects.toMatchObject({ code: Code.Canceled });
    expect((await counter.echo({ text: "still works" })).text).toBe("still works");
  });

  it("treats a WebSocket constructor that throws (a browser's SyntaxError) as a drop, and recovers", async () => {
    let throws = 2;
    class Flaky extends WebSocket {
      constructor(url: string | URL, protocols?: string | string[]) {
        if (throws-- > 0) throw new SyntaxError("The URL is invalid");
        super(url, protocols);
      }
    }
    const transport = createWebSocketTransport({
      url: `${server.url.replace(/^http/, "ws")}/ws?access_token=${encodeURIComponent(token)}`,
      WebSocket: Flaky,
      backoffInitialMs: 10,
      backoffMaxMs: 20,
    });
    transports.push(transport);
    expect((await createClient(CounterService, transport).echo({ text: "after two failures" })).text).toBe("after two failures");
  });

  it("uses per-call headers over the handshake's credentials", async () => {
    const anonymous = createWebSocketTransport({ url: `${server.url.replace(/^http/, "ws")}/ws`, WebSocket });
    transports.push(anonymous);
    const counter = createClient(CounterService, anonymous);
    await expect(counter.echo({ text: "x" })).rejects.toMatchObject({ code: Code.Unauthenticated });
    expect((await counter.echo({ text: "x" }, bearer(token))).text).toBe("x");
  });

  it("resumes a stream whose socket is killed mid-stream: every message exactly once, in order", async () => {
    const room = "typed-kill";
    const watcher = watchServerSockets();
    const states: WebSocketTransportState[] = [];
    try {
      const chat = createClient(
        ChatService,
        wsTransport((s) => states.push(s)),
      );
      const publisher = clientFor(ChatService, transportFor(server.url, "connect", "1.1"));
      await publisher.send({ room, text: "m0" }, bearer(token));
      const total = 60;
      const abort = new AbortController();
      const stream = chat.subscribe({ room, history: 1 }, { signal: abort.signal })[Symbol.asyncIterator]();
      const received: SubscribeResponse[] = [(await stream.next()).value as SubscribeResponse];
      expect(textsOf(received)).toEqual(["m0"]);

      // Messages keep coming while the socket dies and comes back.
      const publishing = (async () => {
        for (let i = 1; i <= total; i++) await publisher.send({ room, text: `m${i}` }, bearer(token));
      })();
      while (received.length < total + 1) {
        const next = await stream.next();
        received.push(next.value as SubscribeResponse);
        if (received.length === 10) (await watcher.nth(1)).terminate();
      }
      await publishing;
      abort.abort();

      expect(textsOf(received)).toEqual(Array.from({ length: total + 1 }, (_, i) => `m${i}`));
      expect(new Set(received.map((r) => r.cursor)).size).toBe(total + 1);
      expect(watcher.sockets.length).toBe(2);
      expect(states).toEqual(["connecting", "open", "waiting", "connecting", "open"]);
    } finally {
      watcher.stop();
    }
  });

  it("resumes a completion killed mid-stream under its completion_id: the whole reply once, in order", async () => {
    const watcher = watchServerSockets();
    try {
      const prompt = { messages: [{ role: "user", content: "Tell me about rivers and streams." }], maxTokens: 40 };
      const reference = await collect(clientFor(ChatService, transportFor(server.url, "connect", "1.1")).complete(prompt, bearer(token)));
      expect(reference.length).toBeGreaterThan(10);
      const chat = createClient(ChatService, wsTransport());
      const received: CompleteResponse[] = [];
      for await (const response of chat.complete(prompt)) {
        received.push(response);
        if (received.length === 5) (await watcher.nth(1)).terminate();
      }
      expect(watcher.sockets.length).toBe(2);
      // The same deterministic reply as an uninterrupted completion of the same prompt, under one id.
      expect(received.map((r) => r.delta)).toEqual(reference.map((r) => r.delta));
      expect(received.at(-1)).toMatchObject({ finishReason: reference.at(-1)!.finishReason });
      expect(new Set(received.map((r) => r.completionId)).size).toBe(1);
      expect(new Set(received.map((r) => r.cursor)).size).toBe(received.length);
    } finally {
      watcher.stop();
    }
  });

  it("delivers sends made while disconnected, and an interrupted send, exactly once after reconnecting", async () => {
    const room = "typed-offline";
    const watcher = watchServerSockets();
    let offline: () => void = () => undefined;
    const wentOffline = new Promise<void>((resolve) => (offline = resolve));
    try {
      const transport = wsTransport((state) => state === "waiting" && offline());
      const chat = createClient(ChatService, transport);
      // Open the socket with a first send.
      await chat.send({ room, text: "online" });
      const server1 = await watcher.nth(1);

      // The server receives the next send's call frame and the connection dies before the reply.
      let sendFrames = 0;
      const countSends = (socket: WebSocket) =>
        socket.on("message", (data: Buffer) => {
          const frame = fromBinary(ClientFrameSchema, data);
          if (frame.kind.case === "call" && frame.kind.value.method.endsWith("/Send")) sendFrames++;
        });
      countSends(server1);
      server1.once("message", () => server1.terminate());
      const interrupted = chat.send({ room, text: "interrupted" });
      await wentOffline;
      expect(transport.state).toBe("waiting");
      // Offline now: these are queued and sent when the socket is back.
      const queued = [chat.send({ room, text: "offline 1" }), chat.send({ room, text: "offline 2" })];
      const server2 = await watcher.nth(2);
      countSends(server2);
      const results = await Promise.all([interrupted, ...queued]);
      expect(results.map((r) => r.message?.text)).toEqual(["interrupted", "offline 1", "offline 2"]);

      const history = await take(clientFor(ChatService, transportFor(server.url, "connect", "1.1")).subscribe({ room, history: 10 }, bearer(token)), 4);
      expect(textsOf(history).sort()).toEqual(["interrupted", "offline 1", "offline 2", "online"]);
      // The interrupted send's reply carries the stored message: the replay was deduplicated, not stored again.
      const stored = history.find((r) => r.event.case === "message" && r.event.value.text === "interrupted");
      expect(stored?.event.value).toMatchObject({ id: results[0]!.message!.id });
      // One frame for it on the first socket, and its replay (with the same key) plus the two queued on the second.
      expect(sendFrames).toBe(4);
    } finally {
      watcher.stop();
    }
  });

  it("fails an interrupted unary call without an idempotency key with unavailable, and ends calls when closed", async () => {
    const watcher = watchServerSockets();
    try {
      const transport = wsTransport();
      const counter = createClient(CounterService, transport);
      expect((await counter.echo({ text: "warm" })).text).toBe("warm");
      const first = await watcher.nth(1);
      first.once("message", () => first.terminate());
      // Echo has no idempotency_key and no idempotency level: sending it again could act twice.
      await expect(counter.echo({ text: "lost" })).rejects.toMatchObject({ code: Code.Unavailable });
      // The transport reconnects for the next call.
      expect((await counter.echo({ text: "next" })).text).toBe("next");

      const streaming = collect(counter.count({ to: 1_000_000 }));
      transport.close();
      await expect(streaming).rejects.toMatchObject({ code: Code.Canceled });
      await expect(counter.echo({ text: "after close" })).rejects.toMatchObject({ code: Code.Canceled });
    } finally {
      watcher.stop();
    }
  });
});
