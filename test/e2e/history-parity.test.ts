import { fromJson, type JsonValue } from "@bufbuild/protobuf";
import type { Transport } from "@connectrpc/connect";
import { compressionGzip, createConnectTransport } from "@connectrpc/connect-node";
import { EventSource } from "eventsource";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatService, SubscribeResponseSchema, type SubscribeRequest, type SubscribeResponse } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { createWebSocketTransport } from "../../src/client/websocket-transport.js";
import { deleteKeys, redisAvailable, redisUrl, uniquePrefix } from "../broker/test-redis.js";
import { bearer, clientFor, transportFor } from "../helpers/clients.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { ssePath } from "../helpers/sse.js";

/**
 * The same history and resume requests over every transport and encoding give
 * the same messages. Binary Connect and gRPC, SSE and WebSocket are served by
 * the topic hub; Connect JSON, gRPC-Web and compressed requests by connect-node
 * through `subscribe()`. Both read the log in batches of 256, so the sizes sit
 * on either side of every batch boundary, and both brokers are covered.
 */
const roomSize = 700;
const sizes = [255, 256, 257, 511, 512, 513, 600];
const subscribeMethod = "rivulet.chat.v1.ChatService/Subscribe";

type Request = Pick<SubscribeRequest, "history" | "cursor">;

/** Reads one subscription until the room's newest message: the responses, as "text" or "<gap>". */
type Reader = (request: Request, newest: string) => Promise<string[]>;

const describeResponse = (response: SubscribeResponse) => (response.event.case === "message" ? response.event.value.text : `<${response.event.case}>`);

/** Runs of consecutive messages as "m1..m9": exact, and a failure's diff stays a few lines long. */
function runs(received: readonly string[]): string[] {
  const result: string[] = [];
  let start: number | undefined;
  let previous: number | undefined;
  const close = () => {
    if (start !== undefined) result.push(start === previous ? `m${start}` : `m${start}..m${previous}`);
    start = previous = undefined;
  };
  for (const item of received) {
    const n = /^m(\d+)$/.exec(item) ? Number(item.slice(1)) : undefined;
    if (n !== undefined && previous !== undefined && n === previous + 1) {
      previous = n;
      continue;
    }
    close();
    if (n === undefined) result.push(item);
    else start = previous = n;
  }
  close();
  return result;
}

/**
 * A generated client's subscription, read up to and including the newest
 * message, then cancelled through its signal: connect-es's iterators have no
 * `return()`, so leaving the loop alone would keep the call open on the server.
 */
async function through(subscribe: (signal: AbortSignal) => AsyncIterable<SubscribeResponse>, newest: string): Promise<string[]> {
  const controller = new AbortController();
  const received: string[] = [];
  try {
    for await (const response of subscribe(controller.signal)) {
      received.push(describeResponse(response));
      if (response.event.case === "message" && response.event.value.text === newest) break;
    }
  } finally {
    controller.abort();
  }
  return received;
}

/** SSE with the eventsource package: the request as the `message` query parameter, the token in a header. */
function sseReader(server: TestServer, token: string, room: string): Reader {
  return (request, newest) =>
    new Promise((resolve, reject) => {
      const received: string[] = [];
      const source = new EventSource(`${server.url}${ssePath(subscribeMethod, { room, ...request })}`, {
        fetch: (input, init) => fetch(input, { ...init, headers: { ...init?.headers, authorization: `Bearer ${token}` } }),
      });
      source.onmessage = (event) => {
        const response = fromJson(SubscribeResponseSchema, JSON.parse(event.data as string) as JsonValue);
        received.push(describeResponse(response));
        if (response.event.case === "message" && response.event.value.text === newest) {
          source.close();
          resolve(received);
        }
      };
      source.onerror = (error) => {
        source.close();
        reject(new Error(`SSE stream failed: ${error.message ?? "unknown"}`));
      };
    });
}

function describeParity(broker: string, startServer: () => Promise<{ server: TestServer; close: () => Promise<void> }>): void {
  describe(`history and resume parity across transports (${broker} broker)`, () => {
    let server: TestServer;
    let close: () => Promise<void>;
    let readers: Record<string, Reader>;
    let webSocket: ReturnType<typeof createWebSocketTransport>;
    const room = "parity";
    const texts = Array.from({ length: roomSize }, (_, i) => `m${i + 1}`);
    const cursors: string[] = [];

    beforeAll(async () => {
      ({ server, close } = await startServer());
      const token = await server.token("alice");
      const auth = bearer(token);
      const sender = clientFor(ChatService, transportFor(server.url, "connect", "2"));
      for (const text of texts) cursors.push((await sender.send({ room, text }, auth)).message!.cursor);

      webSocket = createWebSocketTransport({ url: `${server.url.replace(/^http/, "ws")}/ws?access_token=${encodeURIComponent(token)}` });
      const transports: Record<string, Transport> = {
        "Connect proto over HTTP/1.1": transportFor(server.url, "connect", "1.1"),
        "Connect proto over h2c": transportFor(server.url, "connect", "2"),
        "Connect JSON over HTTP/1.1": createConnectTransport({ baseUrl: server.url, httpVersion: "1.1", useBinaryFormat: false }),
        "Connect JSON over h2c": createConnectTransport({ baseUrl: server.url, httpVersion: "2", useBinaryFormat: false }),
        "Connect proto, gzip request, over h2c": createConnectTransport({
          baseUrl: server.url,
          httpVersion: "2",
          sendCompression: compressionGzip,
          compressMinBytes: 0,
        }),
        "gRPC over HTTP/1.1": transportFor(server.url, "grpc", "1.1"),
        "gRPC over h2c": transportFor(server.url, "grpc", "2"),
        "gRPC-Web over HTTP/1.1": transportFor(server.url, "grpc-web", "1.1"),
        "gRPC-Web over h2c": transportFor(server.url, "grpc-web", "2"),
        "WebSocket (typed transport)": webSocket,
      };
      readers = { "SSE (eventsource)": sseReader(server, token, room) };
      for (const [name, transport] of Object.entries(transports)) {
        const chat = clientFor(ChatService, transport);
        readers[name] = (request, newest) => through((signal) => chat.subscribe({ room, ...request }, { ...auth, signal }), newest);
      }
    });
    afterAll(async () => {
      webSocket?.close();
      await close?.();
    });

    /** Every transport's answer to one request, by transport name, as runs. */
    async function everyTransport(request: Request): Promise<Record<string, string[]>> {
      const newest = texts.at(-1)!;
      const entries = await Promise.all(Object.entries(readers).map(async ([name, read]) => [name, await read(request, newest)] as const));
      return Object.fromEntries(entries.map(([name, received]) => [name, runs(received)]));
    }
    const everywhere = (messages: string[]) => Object.fromEntries(Object.keys(readers).map((name) => [name, runs(messages)]));

    it.each([...sizes, roomSize, 1000])("history %i: the newest messages, the same on every transport", async (history) => {
      expect(await everyTransport({ history, cursor: "" })).toEqual(everywhere(texts.slice(-history)));
    });

    it.each(sizes)("resume with %i messages behind: all of them, the same on every transport", async (behind) => {
      const cursor = cursors[roomSize - behind - 1]!;
      expect(await everyTransport({ history: 0, cursor })).toEqual(everywhere(texts.slice(-behind)));
    });
  });
}

describeParity("memory", async () => {
  const server = await startTestServer();
  return { server, close: () => server.close() };
});

describe.runIf(redisAvailable())("with Redis", () => {
  describeParity("Redis", async () => {
    const prefix = uniquePrefix();
    const server = await startTestServer({ config: { broker: redisUrl, redisPrefix: prefix } });
    return {
      server,
      close: async () => {
        await server.close();
        await deleteKeys(prefix);
      },
    };
  });
});
