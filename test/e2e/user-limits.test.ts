// Per-user limits and token lifetime on live streams, as generated Connect
// clients see them: a stream ends with unauthenticated when its token expires
// and resumes with a fresh one; writes past the rate and streams past the cap
// get resource_exhausted while other users carry on.
import { Code, ConnectError } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatService, type SubscribeResponse } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { bearer, clientFor, collect, take, transportFor } from "../helpers/clients.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/** The text of a chat event ("gap" for a gap). */
const textOf = (response: SubscribeResponse) => (response.event.case === "message" ? response.event.value.text : response.event.case);

/** The error a stream ended with, after collecting what it delivered. */
async function drain<T>(stream: AsyncIterable<T>): Promise<{ items: T[]; error: ConnectError | undefined }> {
  const items: T[] = [];
  try {
    for await (const item of stream) items.push(item);
    return { items, error: undefined };
  } catch (error) {
    return { items, error: ConnectError.from(error) };
  }
}

describe("a live stream whose token expires", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server.close());

  it("ends with unauthenticated, and resumes from its cursor with a fresh token", async () => {
    const chat = clientFor(ChatService, transportFor(server.url, "connect", "2"));
    const writer = bearer(await server.token("writer"));
    const first = await chat.send({ room: "expiring", text: "one" }, writer);
    // A token that lives one to two more seconds (`exp` counts whole seconds):
    // time enough for the history message, then the stream must end.
    const shortLived = bearer(await server.token("reader", [], 2));
    const { items, error } = await drain(chat.subscribe({ room: "expiring", history: 1 }, shortLived));
    expect(items.map(textOf)).toEqual(["one"]);
    expect(error?.code).toBe(Code.Unauthenticated);
    expect(error?.rawMessage).toMatch(/token expired/);

    await chat.send({ room: "expiring", text: "two" }, writer);
    const fresh = bearer(await server.token("reader"));
    const resumed = await take(chat.subscribe({ room: "expiring", cursor: first.message!.cursor }, fresh), 1);
    expect(resumed.map(textOf)).toEqual(["two"]);
  });
});

describe("the write rate per user", () => {
  let server: TestServer;
  beforeAll(async () => {
    // One write per second sustained, three at once.
    server = await startTestServer({ config: { publishRate: 1, publishBurst: 3 } });
  });
  afterAll(() => server.close());

  it("answers resource_exhausted with a retry hint past the burst, and leaves other users alone", async () => {
    const chat = clientFor(ChatService, transportFor(server.url, "connect", "1.1"));
    const alice = bearer(await server.token("alice"));
    for (const text of ["1", "2", "3"]) await chat.send({ room: "rate", text }, alice);
    const error = await chat.send({ room: "rate", text: "4" }, alice).then(
      () => undefined,
      (reason: unknown) => ConnectError.from(reason),
    );
    expect(error?.code).toBe(Code.ResourceExhausted);
    expect(error?.rawMessage).toMatch(/^rate limit: at most 1 writes per second; retry in \d+ ms$/);
    expect(error?.metadata.get("retry-after")).toMatch(/^[1-9]\d*$/);

    await chat.send({ room: "rate", text: "from bob" }, bearer(await server.token("bob")));
    const history = await take(chat.subscribe({ room: "rate", history: 10 }, bearer(await server.token("carol"))), 4);
    expect(history.map(textOf)).toEqual(["1", "2", "3", "from bob"]);
  });
});

describe("streams per user", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ config: { streamsPerUser: 2 } });
  });
  afterAll(() => server.close());

  it("refuses a stream past the cap with resource_exhausted, and frees a place when one ends", async () => {
    const chat = clientFor(ChatService, transportFor(server.url, "connect", "2"));
    const alice = bearer(await server.token("alice"));
    await chat.send({ room: "cap", text: "hello" }, alice);
    const open = chat.subscribe({ room: "cap", history: 1 }, alice)[Symbol.asyncIterator]();
    await open.next();
    const completion = chat.complete({ messages: [{ role: "user", content: "hi" }], maxTokens: 5 }, alice)[Symbol.asyncIterator]();
    await completion.next();

    const refused = await drain(chat.subscribe({ room: "cap", history: 1 }, alice));
    expect(refused.error?.code).toBe(Code.ResourceExhausted);
    expect(refused.error?.rawMessage).toBe("at most 2 streams per user are open at once");
    // Another user is not affected.
    expect((await take(chat.subscribe({ room: "cap", history: 1 }, bearer(await server.token("bob"))), 1)).map(textOf)).toEqual(["hello"]);

    // The completion ends by itself; its place is free once its end arrives.
    await collect({ [Symbol.asyncIterator]: () => completion });
    expect((await take(chat.subscribe({ room: "cap", history: 1 }, alice), 1)).map(textOf)).toEqual(["hello"]);
    await open.return?.();
  });
});

describe("streams per user, on the direct writers and on connect-node", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ config: { streamsPerUser: 2 } });
  });
  afterAll(() => server.close());

  // Binary Connect and gRPC streams detach from their handlers (their place is
  // released by the stream's lease); Connect JSON is served by connect-node.
  it.each([
    ["Connect binary over h2c", () => transportFor(server.url, "connect", "2")],
    ["gRPC over h2c", () => transportFor(server.url, "grpc", "2")],
    ["Connect JSON over h2c", () => createConnectTransport({ baseUrl: server.url, httpVersion: "2", useBinaryFormat: false })],
  ] as const)("%s: a cancelled stream frees its place exactly once, round after round", async (name, transport) => {
    const chat = clientFor(ChatService, transport());
    const user = bearer(await server.token(`cap-${name.replace(/\W+/g, "-")}`));
    await chat.send({ room: "cap2", text: "hello" }, user);
    /** An open stream and its cancel (an aborted signal resets the HTTP/2 stream). */
    const open = async () => {
      const controller = new AbortController();
      const stream = chat.subscribe({ room: "cap2", history: 1 }, { ...user, signal: controller.signal })[Symbol.asyncIterator]();
      await stream.next();
      return { cancel: () => controller.abort() };
    };
    /** Opens a stream once the server has released a place (the cancel travels as its own frame). */
    const openWhenFree = async () => {
      for (let attempt = 0; ; attempt++) {
        try {
          return await open();
        } catch (error) {
          if (ConnectError.from(error).code !== Code.ResourceExhausted || attempt >= 50) throw error;
        }
      }
    };
    let held = [await open(), await open()];
    for (let round = 0; round < 3; round++) {
      // Both places taken: a third is refused (a double release would have let it in).
      expect((await drain(chat.subscribe({ room: "cap2", history: 1 }, user))).error?.code).toBe(Code.ResourceExhausted);
      held[0]!.cancel();
      held = [held[1]!, await openWhenFree()];
    }
    expect((await drain(chat.subscribe({ room: "cap2", history: 1 }, user))).error?.code).toBe(Code.ResourceExhausted);
    for (const stream of held) stream.cancel();
  });
});

describe("stream lifetime", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ config: { streamLifetimeMs: 1000 } });
  });
  afterAll(() => server.close());

  it("ends a stream at --stream-lifetime with unavailable; it resumes from its cursor", async () => {
    const chat = clientFor(ChatService, transportFor(server.url, "connect", "2"));
    const alice = bearer(await server.token("alice"));
    const first = await chat.send({ room: "lifetime", text: "one" }, alice);
    const { items, error } = await drain(chat.subscribe({ room: "lifetime", history: 1 }, alice));
    expect(items.map(textOf)).toEqual(["one"]);
    expect(error?.code).toBe(Code.Unavailable);
    expect(error?.rawMessage).toBe("stream lifetime reached: resume from your last cursor");
    await chat.send({ room: "lifetime", text: "two" }, alice);
    expect((await take(chat.subscribe({ room: "lifetime", cursor: first.message!.cursor }, alice), 1)).map(textOf)).toEqual(["two"]);
  });
});
