// The typed clients outlive their tokens (docs/semantics.md, "Identity and
// authorization"): a stream the server ends with `unauthenticated` because its
// token expired resumes from its cursor with a fresh token from the client's
// token source, and ends only when the fresh token is refused too. Real
// server, real clients, 2-second tokens, a publisher that never pauses.
import { EventEmitter, once } from "node:events";
import { setTimeout as delay } from "node:timers/promises";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatService, type SubscribeResponse } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { clockToleranceSeconds } from "../../src/auth/tokens.js";
import { createSseClient } from "../../src/client/sse.js";
import { createSseTransport } from "../../src/client/sse-transport.js";
import { createWebSocketTransport, type WebSocketTransportOptions } from "../../src/client/websocket-transport.js";
import { bearer, clientFor, transportFor } from "../helpers/clients.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { startTcpProxy } from "../helpers/tcp-proxy.js";

/** Token lifetime, in seconds: short enough for several expiries per test. */
const ttlSeconds = 2;
/** Expiries each stream must live through. */
const expiries = 3;

describe("typed clients across token expiry", () => {
  let server: TestServer;
  let chat: ReturnType<typeof clientFor<typeof ChatService>>;
  let publisherToken: string;

  beforeAll(async () => {
    server = await startTestServer();
    chat = clientFor(ChatService, transportFor(server.url, "connect", "2"));
    publisherToken = await server.token("publisher");
  });
  afterAll(() => server.close());

  const wsUrl = () => `${server.url.replace(/^http/, "ws")}/ws`;

  /** A token source that mints 2-second tokens for alice, then (from call `validCalls` + 1 on) a garbage one; counts its calls. */
  function tokenSource(validCalls = Infinity) {
    const source = {
      calls: 0,
      next: async (): Promise<string> => (++source.calls <= validCalls ? server.token("alice", [], ttlSeconds) : "not-a-jwt"),
    };
    return source;
  }

  /**
   * Publishes 1, 2, 3, … to the room while the subscriber reads, until the
   * token source has been asked `expiries` times after the first, then "last";
   * returns what was published and what the subscriber received.
   */
  async function readAcrossExpiries(room: string, source: { readonly calls: number }, stream: AsyncIterable<SubscribeResponse>) {
    const published: string[] = [];
    let publishing = true;
    const publisher = (async () => {
      for (let n = 1; publishing; n++) {
        await chat.send({ room, text: String(n) }, bearer(publisherToken));
        published.push(String(n));
        await delay(20); // a steady rate, so messages are also published while the stream is down
      }
      await chat.send({ room, text: "last" }, bearer(publisherToken));
      published.push("last");
    })();
    const received: string[] = [];
    try {
      for await (const response of stream) {
        const text = response.event.case === "message" ? response.event.value.text : `<${response.event.case}>`;
        received.push(text);
        if (source.calls > expiries) publishing = false;
        if (text === "last") break;
      }
    } finally {
      publishing = false;
      await publisher;
    }
    return { published, received };
  }

  /** Subscribes from the room's start (history covers what was published before the subscription went live). */
  const request = (room: string) => ({ room, history: 1000 });

  function webSocketClient(options: WebSocketTransportOptions) {
    const transport = createWebSocketTransport(options);
    return { chat: createClient(ChatService, transport), close: () => transport.close() };
  }

  it("WebSocket transport with a token function: every message once, in order, over several expiries", async () => {
    const source = tokenSource();
    const client = webSocketClient({ url: wsUrl(), token: source.next });
    try {
      const { published, received } = await readAcrossExpiries("refresh-ws-token", source, client.chat.subscribe(request("refresh-ws-token")));
      expect(received).toEqual(published);
      expect(source.calls).toBeGreaterThan(expiries);
    } finally {
      client.close();
    }
  });

  it("WebSocket transport with a URL function (handshake token): every message once, in order, over several expiries", async () => {
    const source = tokenSource();
    const client = webSocketClient({ url: async () => `${wsUrl()}?access_token=${await source.next()}` });
    try {
      const { published, received } = await readAcrossExpiries("refresh-ws-url", source, client.chat.subscribe(request("refresh-ws-url")));
      expect(received).toEqual(published);
    } finally {
      client.close();
    }
  });

  it("SSE client with a token function: every message once, in order, over several expiries", async () => {
    const source = tokenSource();
    const reasons: Code[] = [];
    const stream = createSseClient({ baseUrl: server.url, token: source.next }).subscribe(ChatService.method.subscribe, request("refresh-sse-client"), {
      onReconnect: (reason) => reasons.push(reason.code),
    });
    const { published, received } = await readAcrossExpiries("refresh-sse-client", source, stream);
    expect(received).toEqual(published);
    expect(reasons.length).toBeGreaterThanOrEqual(expiries);
    expect(new Set(reasons)).toEqual(new Set([Code.Unauthenticated]));
  });

  it("SSE transport with a token function: every message once, in order, over several expiries", async () => {
    const source = tokenSource();
    const sse = createClient(ChatService, createSseTransport({ baseUrl: server.url, token: source.next }));
    const { published, received } = await readAcrossExpiries("refresh-sse-transport", source, sse.subscribe(request("refresh-sse-transport")));
    expect(received).toEqual(published);
  });

  // A laptop that sleeps: the socket drops while a quiet stream's token expires, and the session's
  // reconnect resends the call with the token it last had. The server's immediate refusal of that
  // stale token is not a refusal of a fresh one: the stream renews its token and carries on.
  it("WebSocket transport, token function: a quiet stream resent with an expired token after a reconnect renews it", async () => {
    const proxy = await startTcpProxy(server.port);
    const tokens: string[] = [];
    const next = async () => {
      const token = await server.token("alice", [], 1);
      tokens.push(token);
      return token;
    };
    const states = new EventEmitter();
    const client = webSocketClient({ url: `ws://127.0.0.1:${proxy.port}/ws`, token: next, onStateChange: (state) => states.emit(state) });
    try {
      const opened = once(states, "open");
      // Starting to read sends the call; the room stays empty, so no response clears the stream's fresh-credentials mark.
      const stream = client.chat.subscribe(request("refresh-ws-quiet"))[Symbol.asyncIterator]();
      const first = stream.next();
      await opened; // the session opens its socket for this call and sends it as soon as it is open
      expect(tokens).toHaveLength(1);

      // New connections wait in the proxy, so the resend happens only once the token is refused.
      proxy.drop({ hold: true });
      await proxy.waitForConnections(2);
      const refusedFrom = (decodeJwt(tokens[0]!).exp! + clockToleranceSeconds) * 1000;
      await delay(refusedFrom - Date.now()); // the scenario itself: the token expires while the socket is down
      proxy.release();

      await chat.send({ room: "refresh-ws-quiet", text: "after the expiry" }, bearer(publisherToken));
      const received = await first;
      expect(received.done).toBe(false);
      expect(received.value?.event.case === "message" && received.value.event.value.text).toBe("after the expiry");
      expect(tokens).toHaveLength(2);
      await stream.return?.();
    } finally {
      client.close();
      await proxy.close();
    }
  });

  /** Reads until the stream fails; returns the error. */
  async function failureOf(stream: AsyncIterable<SubscribeResponse>): Promise<ConnectError> {
    try {
      for await (const _ of stream) continue;
    } catch (error) {
      return ConnectError.from(error);
    }
    throw new Error("the stream ended without an error");
  }

  describe("a refused fresh token ends the stream with unauthenticated, after one attempt", () => {
    /** A room with one message, so the stream has received something before its first token expires. */
    const seeded = async (room: string) => {
      await chat.send({ room, text: "hello" }, bearer(publisherToken));
      return request(room);
    };

    it("WebSocket transport, token function", async () => {
      const source = tokenSource(1);
      const client = webSocketClient({ url: wsUrl(), token: source.next });
      try {
        expect((await failureOf(client.chat.subscribe(await seeded("refused-ws-token")))).code).toBe(Code.Unauthenticated);
        expect(source.calls).toBe(2);
      } finally {
        client.close();
      }
    });

    it("WebSocket transport, URL function", async () => {
      const source = tokenSource(1);
      const client = webSocketClient({ url: async () => `${wsUrl()}?access_token=${await source.next()}` });
      try {
        expect((await failureOf(client.chat.subscribe(await seeded("refused-ws-url")))).code).toBe(Code.Unauthenticated);
        expect(source.calls).toBe(2); // two handshakes
      } finally {
        client.close();
      }
    });

    it("SSE client", async () => {
      const source = tokenSource(1);
      const stream = createSseClient({ baseUrl: server.url, token: source.next }).subscribe(ChatService.method.subscribe, await seeded("refused-sse"));
      expect((await failureOf(stream)).code).toBe(Code.Unauthenticated);
      expect(source.calls).toBe(2); // two requests
    });

    it("a fixed token string is not asked again: its expiry ends the stream", async () => {
      const stream = createSseClient({ baseUrl: server.url, token: await server.token("alice", [], ttlSeconds) }).subscribe(
        ChatService.method.subscribe,
        request("fixed-sse"),
      );
      const client = webSocketClient({ url: wsUrl(), token: await server.token("alice", [], ttlSeconds) });
      try {
        const failures = await Promise.all([failureOf(stream), failureOf(client.chat.subscribe(request("fixed-ws")))]);
        expect(failures.map((f) => f.code)).toEqual([Code.Unauthenticated, Code.Unauthenticated]);
      } finally {
        client.close();
      }
    });
  });
});
