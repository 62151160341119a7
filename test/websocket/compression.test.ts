// permessage-deflate (RFC 7692) on GET /ws with --ws-compression on: real `ws`
// clients with and without the extension, the server's frames read off the
// client's TCP socket before ws inflates them.
import { constants, deflateRawSync, inflateRawSync } from "node:zlib";
import { fromBinary } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ServerFrameSchema } from "../../gen/rivulet/bridge/v1/bridge_pb.js";
import { ChatService, SubscribeRequestSchema, SubscribeResponseSchema } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { bearer, clientFor, transportFor } from "../helpers/clients.js";
import { metricValue, startTestServer, type TestServer } from "../helpers/server.js";
import { openRawSocket, type RawSocket, type WireFrame } from "./raw-socket.js";

const subscribe = "rivulet.chat.v1.ChatService/Subscribe";
const deflated = "rivulet_websocket_deflated_messages_total";
/** Above the default 1 KiB threshold, and compressible. */
const bigText = "the quick brown fox jumps over the lazy dog; ".repeat(60);
const texts = (messages: { event: { case: string | undefined; value?: unknown } }[]) =>
  messages.map((m) => (m.event.case === "message" ? (m.event.value as { text: string }).text : m.event.case));
/** Binary data frames (opcode 2) the server sent, control frames left out. */
const dataFrames = (socket: RawSocket): WireFrame[] => socket.wire.filter((frame) => frame.opcode === 2);
/** RFC 7692 §7.2.2: append the removed empty block, then inflate. */
const inflate = (payload: Buffer) => inflateRawSync(Buffer.concat([payload, Buffer.from([0x00, 0x00, 0xff, 0xff])]), { finishFlush: constants.Z_SYNC_FLUSH });

describe("WebSocket permessage-deflate, --ws-compression on", () => {
  let server: TestServer;
  let token: string;
  const sockets: RawSocket[] = [];
  beforeAll(async () => {
    server = await startTestServer({ config: { wsCompression: true } });
    token = await server.token("alice");
  });
  afterAll(async () => {
    for (const socket of sockets) socket.close();
    await server.close();
  });

  async function open(deflate: boolean): Promise<RawSocket> {
    const socket = await openRawSocket(server.url, { token, deflate, recordWire: true });
    sockets.push(socket);
    return socket;
  }

  /**
   * Subscribes each socket to `room`, on call id `ids[i]` (1 when not given),
   * and waits until each has the room's first message: the subscriptions are live.
   */
  async function subscribeAll(room: string, subscribers: readonly RawSocket[], ids: readonly number[] = []) {
    const publisher = clientFor(ChatService, transportFor(server.url, "connect", "1.1"));
    await publisher.send({ room, text: "first" }, bearer(token));
    subscribers.forEach((socket, i) => socket.call(ids[i] ?? 1, subscribe, SubscribeRequestSchema, { room, history: 1 }));
    for (const [i, socket] of subscribers.entries()) expect(texts((await socket.until(ids[i] ?? 1, SubscribeResponseSchema, 1)).messages)).toEqual(["first"]);
    return publisher;
  }

  it("negotiates server_no_context_takeover with a client that offers the extension, and nothing with one that does not", async () => {
    const [withDeflate, without] = [await open(true), await open(false)];
    expect(withDeflate.socket.extensions).toBe("permessage-deflate");
    expect(withDeflate.extensionsAnswer).toMatch(/^permessage-deflate;.*\bserver_no_context_takeover\b/);
    expect(without.socket.extensions).toBe("");
    expect(without.extensionsAnswer).toBeUndefined();
  });

  it("compresses messages from the threshold up (RSV1) and sends smaller ones plain; both decode as an uncompressed client's do", async () => {
    const [withDeflate, without] = [await open(true), await open(false)];
    const publisher = await subscribeAll("deflate-threshold", [withDeflate, without]);
    await publisher.send({ room: "deflate-threshold", text: bigText }, bearer(token));
    await publisher.send({ room: "deflate-threshold", text: "small" }, bearer(token));
    const [a, b] = await Promise.all([withDeflate.until(1, SubscribeResponseSchema, 2), without.until(1, SubscribeResponseSchema, 2)]);
    expect(texts(a.messages)).toEqual([bigText, "small"]);
    expect(b.messages).toEqual(a.messages);

    // first, big, small: only the big one is compressed, and only for the socket that negotiated it.
    const compressedFrames = dataFrames(withDeflate);
    const plainFrames = dataFrames(without);
    expect(compressedFrames.map((f) => f.rsv1)).toEqual([false, true, false]);
    expect(plainFrames.map((f) => f.rsv1)).toEqual([false, false, false]);
    // The compressed payload inflates to the very ServerFrame bytes the other socket got, and is smaller.
    expect(inflate(compressedFrames[1]!.payload)).toEqual(plainFrames[1]!.payload);
    expect(compressedFrames[1]!.payload.length).toBeLessThan(plainFrames[1]!.payload.length / 4);
    expect(compressedFrames[2]!.payload).toEqual(plainFrames[2]!.payload);
  });

  it("deflates a fanned-out message once whatever the sockets' call ids; every socket decodes the same message", async () => {
    // Clients number their calls as they please: ids of 1-, 2- and 3-byte varints, and two sockets sharing id 1.
    const ids = [1, 1, 2, 7, 300, 70000];
    const subscribers = await Promise.all(ids.map(() => open(true)));
    const publisher = await subscribeAll("deflate-fan-out", subscribers, ids);
    const before = await metricValue(server.url, deflated);
    await publisher.send({ room: "deflate-fan-out", text: bigText }, bearer(token));
    const received = await Promise.all(subscribers.map((socket, i) => socket.until(ids[i]!, SubscribeResponseSchema, 1)));
    for (const result of received) {
      expect(texts(result.messages)).toEqual([bigText]);
      expect(result.messages).toEqual(received[0]!.messages);
    }

    expect(await metricValue(server.url, deflated)).toBe(before + 1);
    const frames = subscribers.map((socket) => dataFrames(socket).at(-1)!);
    for (const frame of frames) {
      expect(frame.rsv1).toBe(true);
      expect(frame.payload.length).toBeLessThan(bigText.length / 4);
    }
    // Sockets on the same call id get the very same compressed bytes.
    expect(frames[1]!.payload).toEqual(frames[0]!.payload);
    // The others differ only in the few uncompressed bytes that hold the id: the deflated rest is shared.
    const rest = (frame: WireFrame) => frame.payload.subarray(frame.payload.length - 16);
    for (const frame of frames) expect(rest(frame)).toEqual(rest(frames[0]!));
    // Inflated by hand too (RFC 7692 §7.2.2), each is a ServerFrame naming its own call around the same payload.
    const inflated = frames.map((frame) => fromBinary(ServerFrameSchema, inflate(frame.payload)).kind);
    expect(inflated.map((kind) => kind.case)).toEqual(ids.map(() => "message"));
    const messages = inflated.map((kind) => (kind.case === "message" ? kind.value : undefined));
    expect(messages.map((message) => message?.id)).toEqual(ids);
    for (const message of messages) expect(message?.payload).toEqual(messages[0]?.payload);
  });

  it("refuses a decompression bomb with 1009: --ws-max-payload bounds the inflated size, not the compressed one", async () => {
    const bomb = Buffer.alloc(8 * 1024 * 1024); // zeros: some 8 KiB deflated, 8 MiB inflated
    expect(deflateRawSync(bomb, { finishFlush: constants.Z_SYNC_FLUSH }).length).toBeLessThan(64 * 1024);
    const socket = await open(true);
    expect(socket.socket.extensions).toBe("permessage-deflate"); // so ws sends the bomb compressed, with RSV1
    socket.sendRaw(bomb);
    expect((await socket.closed).code).toBe(1009);

    // The server carries on.
    const next = await open(true);
    next.send({ kind: { case: "ping", value: { nonce: 7n } } });
    expect((await next.nextControl()).kind).toMatchObject({ case: "pong", value: { nonce: 7n } });
  });
});

describe("WebSocket permessage-deflate, --ws-compression off (the default)", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server.close());

  it("declines the extension: a client that offers it gets plain frames", async () => {
    const socket = await openRawSocket(server.url, { token: await server.token("alice"), deflate: true, recordWire: true });
    expect(socket.socket.extensions).toBe("");
    expect(socket.extensionsAnswer).toBeUndefined();
    socket.send({ kind: { case: "ping", value: { nonce: 1n } } });
    await socket.nextControl();
    expect(dataFrames(socket).map((f) => f.rsv1)).toEqual([false]);
    socket.close();
  });
});
