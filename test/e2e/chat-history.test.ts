import type { Transport } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatService, type HistoryResponse } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { decodeCursor, encodeCursor } from "../../src/broker/cursor.js";
import { createWebSocketTransport, type WebSocketTransport } from "../../src/client/websocket-transport.js";
import { roomTopic } from "../../src/services/chat.js";
import { deleteKeys, redisAvailable, redisUrl, uniquePrefix } from "../broker/test-redis.js";
import { bearer, clientFor, transportFor } from "../helpers/clients.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/**
 * ChatService.History pages a room backwards: the newest page first, each page
 * oldest first, `next_before` leading to the page before it and empty on the
 * last one. Unary, so connect-node serves it on Connect, gRPC and gRPC-Web,
 * and the WebSocket bridge like any other unary method; both brokers.
 */
const roomSize = 250;
const texts = Array.from({ length: roomSize }, (_, i) => `m${i + 1}`);
const transportNames = [
  "Connect over HTTP/1.1",
  "Connect over h2c",
  "gRPC over HTTP/1.1",
  "gRPC over h2c",
  "gRPC-Web over HTTP/1.1",
  "gRPC-Web over h2c",
  "WebSocket (typed transport)",
] as const;
type TransportName = (typeof transportNames)[number];

function describeHistory(broker: string, startServer: () => Promise<{ server: TestServer; close: () => Promise<void> }>): void {
  describe(`ChatService.History (${broker} broker)`, () => {
    let server: TestServer;
    let close: () => Promise<void>;
    let auth: ReturnType<typeof bearer>;
    let webSocket: WebSocketTransport | undefined;
    let transports: Record<TransportName, Transport>;
    const room = "history";
    /** The cursor of each message as Send returned it, in order. */
    const cursors: string[] = [];

    beforeAll(async () => {
      ({ server, close } = await startServer());
      const token = await server.token("alice");
      auth = bearer(token);
      const sender = clientFor(ChatService, transportFor(server.url, "connect", "2"));
      for (const text of texts) cursors.push((await sender.send({ room, text }, auth)).message!.cursor);
      webSocket = createWebSocketTransport({ url: `${server.url.replace(/^http/, "ws")}/ws?access_token=${encodeURIComponent(token)}` });
      transports = {
        "Connect over HTTP/1.1": transportFor(server.url, "connect", "1.1"),
        "Connect over h2c": transportFor(server.url, "connect", "2"),
        "gRPC over HTTP/1.1": transportFor(server.url, "grpc", "1.1"),
        "gRPC over h2c": transportFor(server.url, "grpc", "2"),
        "gRPC-Web over HTTP/1.1": transportFor(server.url, "grpc-web", "1.1"),
        "gRPC-Web over h2c": transportFor(server.url, "grpc-web", "2"),
        "WebSocket (typed transport)": webSocket,
      };
    });
    afterAll(async () => {
      webSocket?.close();
      await close?.();
    });

    const chat = (name: TransportName = "Connect over h2c") => clientFor(ChatService, transports[name]);
    const pageTexts = (page: HistoryResponse) => page.messages.map((message) => message.text);

    it.each(transportNames)(
      "pages across 250 messages in pages of 100, 100, 50 with no gap or repeat, over %s",
      async (name) => {
        const client = chat(name);
        const pages: HistoryResponse[] = [];
        let before = "";
        do {
          const page = await client.history({ room, before, limit: 100 }, auth);
          pages.push(page);
          before = page.nextBefore;
        } while (before !== "" && pages.length < 10);
        expect(pages.map((page) => page.messages.length)).toEqual([100, 100, 50]);
        // Newest page first, each oldest first: the pages in reverse are the room, exactly once, in order.
        expect(pages.map(pageTexts)).toEqual([texts.slice(150), texts.slice(50, 150), texts.slice(0, 50)]);
        expect(
          pages
            .toReversed()
            .flatMap((page) => page.messages)
            .map((message) => message.cursor),
        ).toEqual(cursors);
        // Each page's next_before is the cursor of its oldest message; the last page's is empty.
        expect(pages.map((page) => page.nextBefore)).toEqual([cursors[150], cursors[50], ""]);
        expect(pages[0]!.messages[0]).toMatchObject({ room, author: "alice", text: "m151" });
      },
      30_000,
    );

    it("returns the newest 50 when the limit is 0", async () => {
      const page = await chat().history({ room }, auth);
      expect(pageTexts(page)).toEqual(texts.slice(-50));
      expect(page.nextBefore).toBe(cursors[roomSize - 50]);
    });

    it("returns the messages before a message's own cursor, and an empty last page before the first", async () => {
      const page = await chat().history({ room, before: cursors[10]!, limit: 100 }, auth);
      expect(pageTexts(page)).toEqual(texts.slice(0, 10));
      expect(page.nextBefore).toBe("");
      const first = await chat("WebSocket (typed transport)").history({ room, before: cursors[0]!, limit: 1 }, auth);
      expect(first.messages).toEqual([]);
      expect(first.nextBefore).toBe("");
    });

    it("reads a room nobody wrote to as one empty page", async () => {
      const page = await chat().history({ room: "history-empty", limit: 10 }, auth);
      expect(page.messages).toEqual([]);
      expect(page.nextBefore).toBe("");
    });

    it.each([
      ["a limit over 100", () => ({ room, limit: 101 }), "limit must be at most 100"],
      ["a malformed cursor", () => ({ room, before: "not a cursor" }), "malformed cursor"],
      ["a cursor of another room", () => ({ room: "history-other", before: cursors[5]! }), "cursor belongs to another stream"],
      ["a bad room name", () => ({ room: "no spaces" }), "room may contain only letters, digits, '-', '_', '.', ':', '#', ',' and '@'"],
      ["an empty room name", () => ({ room: "" }), "room is required"],
      [
        "a cursor ahead of the room's log",
        () => {
          const newest = decodeCursor(roomTopic(room), cursors.at(-1)!);
          // Without the newest message's stamp: a stamped cursor past the head names a lost message (an epoch_changed gap).
          return { room, before: encodeCursor(roomTopic(room), { epoch: newest.epoch, offset: newest.offset + 1 }) };
        },
        "cursor is ahead of the stream",
      ],
    ])("refuses %s with invalid_argument", async (_, request, message) => {
      for (const name of ["Connect over h2c", "gRPC over h2c", "WebSocket (typed transport)"] as const) {
        await expect(chat(name).history(request(), auth)).rejects.toMatchObject({ code: 3, rawMessage: message });
      }
    });

    it("refuses a cursor from a lost log (another epoch) with failed_precondition", async () => {
      // Another server has its own memory broker: the same room there is another incarnation of its log.
      const other = await startTestServer();
      try {
        const token = bearer(await other.token("alice"));
        const lost = (await clientFor(ChatService, transportFor(other.url, "connect", "2")).send({ room, text: "elsewhere" }, token)).message!.cursor;
        for (const name of ["Connect over h2c", "WebSocket (typed transport)"] as const) {
          await expect(chat(name).history({ room, before: lost }, auth)).rejects.toMatchObject({ code: 9 });
        }
      } finally {
        await other.close();
      }
    });

    it("needs a token", async () => {
      await expect(chat().history({ room })).rejects.toMatchObject({ code: 16 });
    });
  });
}

describeHistory("memory", async () => {
  const server = await startTestServer();
  return { server, close: () => server.close() };
});

describe.runIf(redisAvailable())("with Redis", () => {
  describeHistory("Redis", async () => {
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
