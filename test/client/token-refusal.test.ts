// A token function is told which token the server refused (docs/client.md,
// "Tokens"): asked with `{ refused }` after a call answered
// `unauthenticated` or a stream ended so because its token expired, so a
// function that caches its token mints a new one. A function that returns
// the refused token again gets the refusal. Real server, real clients,
// tokens signed by the server's secret, and one that is not a JWT at all.
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatService, type SubscribeResponse } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { createSseTransport } from "../../src/client/sse-transport.js";
import type { TokenRequest, TokenSource } from "../../src/client/token-source.js";
import { createWebSocketTransport } from "../../src/client/websocket-transport.js";
import { createMemoryOutbox } from "../../src/client/outbox.js";
import { bearer, clientFor, transportFor } from "../helpers/clients.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const invalid = "not-a-jwt";

describe("token functions told of a refused token", () => {
  let server: TestServer;
  let publisher: string;

  beforeAll(async () => {
    server = await startTestServer();
    publisher = await server.token("publisher");
  });
  afterAll(() => server.close());

  const wsUrl = () => `${server.url.replace(/^http/, "ws")}/ws`;
  const textOf = (r: SubscribeResponse) => (r.event.case === "message" ? r.event.value.text : `<${r.event.case}>`);
  const publish = (room: string, text: string) => clientFor(ChatService, transportFor(server.url, "connect", "1.1")).send({ room, text }, bearer(publisher));

  /**
   * A token function with a cache, as applications write them: it keeps
   * returning `first` until told that token was refused, then mints one for
   * alice (with `ttlSeconds`). Records every request it got.
   */
  function cachingSource(first: string | (() => Promise<string>), ttlSeconds = 3600) {
    const requests: TokenRequest[] = [];
    let cached: string | undefined;
    const minted: string[] = [];
    return {
      requests,
      minted,
      async token(request: TokenRequest): Promise<string> {
        requests.push(request);
        if (cached === undefined) cached = typeof first === "string" ? first : await first();
        if (request.refused === cached) {
          cached = await server.token("alice", [], ttlSeconds);
          minted.push(cached);
        }
        return cached;
      },
    };
  }

  it("WebSocket transport: a unary call answered unauthenticated is sent once more with the token minted after the refusal", async () => {
    const source = cachingSource(invalid);
    const transport = createWebSocketTransport({ url: wsUrl(), token: source.token });
    try {
      const { message } = await createClient(ChatService, transport).send({ room: "refusal-ws-unary", text: "hello" });
      expect(message?.text).toBe("hello");
      expect(source.requests).toEqual([{}, { refused: invalid }]);
    } finally {
      transport.close();
    }
  });

  it("WebSocket transport: a function that returns the refused token again gets the server's refusal", async () => {
    const requests: TokenRequest[] = [];
    const transport = createWebSocketTransport({
      url: wsUrl(),
      token: (request) => {
        requests.push(request);
        return invalid;
      },
    });
    try {
      const error = await createClient(ChatService, transport)
        .send({ room: "refusal-ws-same", text: "never" })
        .then(() => undefined, ConnectError.from);
      expect([error?.code, error?.rawMessage]).toEqual([Code.Unauthenticated, "invalid token"]);
      expect(requests).toEqual([{}, { refused: invalid }]);
    } finally {
      transport.close();
    }
  });

  it("WebSocket transport: a stream whose first token is refused resumes with the one minted after the refusal", async () => {
    const source = cachingSource(invalid);
    const transport = createWebSocketTransport({ url: wsUrl(), token: source.token });
    const room = "refusal-ws-stream";
    try {
      await publish(room, "m1");
      const stream = createClient(ChatService, transport).subscribe({ room, history: 10 })[Symbol.asyncIterator]();
      expect(textOf((await stream.next()).value as SubscribeResponse)).toBe("m1");
      expect(source.requests).toEqual([{}, { refused: invalid }]);
      await stream.return?.();
    } finally {
      transport.close();
    }
  });

  it.each([
    [
      "WebSocket",
      (token: TokenSource) => {
        const transport = createWebSocketTransport({ url: wsUrl(), token });
        return { transport, close: () => transport.close() };
      },
    ],
    ["SSE", (token: TokenSource) => ({ transport: createSseTransport({ baseUrl: server.url, token, backoff: { initialMs: 20 } }), close: () => undefined })],
  ] as const)("%s transport: a stream whose token expired asks with { refused: <the expired token> } and carries on", async (name, open) => {
    // A cached one-second token, renewed only when refused.
    let first = "";
    const source = cachingSource(async () => (first = await server.token("alice", [], 1)));
    const { transport, close } = open(source.token);
    const room = `refusal-${name}-expiry`;
    try {
      await publish(room, "m0");
      const stream = createClient(ChatService, transport).subscribe({ room, history: 10 })[Symbol.asyncIterator]();
      expect(textOf((await stream.next()).value as SubscribeResponse)).toBe("m0");
      // One message at a time, each read before the next is published, until the token expired and was renewed.
      const published: string[] = [];
      const received: string[] = [];
      for (let n = 1; source.minted.length === 0; n++) {
        await publish(room, `m${n}`);
        published.push(`m${n}`);
        received.push(textOf((await stream.next()).value as SubscribeResponse));
      }
      expect(received).toEqual(published);
      expect(source.requests).toEqual([{}, { refused: first }]);
      await stream.return?.();
    } finally {
      close();
    }
  });

  it("WebSocket transport: a queued write whose token is refused is sent with the token minted after the refusal", async () => {
    const source = cachingSource(invalid);
    const transport = createWebSocketTransport({ url: wsUrl(), token: source.token, outbox: createMemoryOutbox() });
    try {
      // Made before the socket opened: through the outbox.
      const { message } = await createClient(ChatService, transport).send({ room: "refusal-ws-outbox", text: "queued" });
      expect(message?.text).toBe("queued");
      expect(source.requests).toEqual([{}, { refused: invalid }]);
    } finally {
      transport.close();
    }
  });

  it("SSE transport: a stream refused with 401 reconnects with the token minted after the refusal", async () => {
    const source = cachingSource(invalid);
    const reasons: Code[] = [];
    const sse = createClient(
      ChatService,
      createSseTransport({ baseUrl: server.url, token: source.token, backoff: { initialMs: 20 }, onReconnect: (reason) => reasons.push(reason.code) }),
    );
    const room = "refusal-sse-401";
    await publish(room, "m1");
    const stream = sse.subscribe({ room, history: 10 })[Symbol.asyncIterator]();
    expect(textOf((await stream.next()).value as SubscribeResponse)).toBe("m1");
    expect(source.requests).toEqual([{}, { refused: invalid }]);
    expect(reasons).toEqual([Code.Unauthenticated]);
    await stream.return?.();
  });

  it("SSE transport: a function that returns the refused token again ends the stream with the refusal, without a second request", async () => {
    const requests: TokenRequest[] = [];
    const sse = createClient(
      ChatService,
      createSseTransport({
        baseUrl: server.url,
        backoff: { initialMs: 20 },
        token: (request) => {
          requests.push(request);
          return invalid;
        },
      }),
    );
    const error = await (async () => {
      for await (const _ of sse.subscribe({ room: "refusal-sse-same" })) continue;
    })().then(() => undefined, ConnectError.from);
    expect(error?.code).toBe(Code.Unauthenticated);
    expect(requests).toEqual([{}, { refused: invalid }]);
  });
});
