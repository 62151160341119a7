import { constants, inflateRawSync } from "node:zlib";
import { create, toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { ServerFrameSchema } from "../../gen/rivulet/bridge/v1/bridge_pb.js";
import { EchoResponseSchema } from "../../gen/rivulet/testing/v1/counter_pb.js";
import { deflateMessage, negotiatedDeflate, outgoingFrame, type WebSocketDeflate } from "../../src/bridge/websocket/deflate.js";
import { encodeMessageFrame, webSocketBinaryFrame } from "../../src/bridge/websocket/frames.js";
import { messageFrameOf } from "../../src/bridge/websocket/message-frame.js";

const toHex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");
const hello = Buffer.from("Hello");

/** A deflate setting whose counter records how many messages were compressed. */
function deflateOf(windowBits: number, threshold: number): WebSocketDeflate & { count: number } {
  const setting = { windowBits, threshold, count: 0, counter: { inc: () => setting.count++ } };
  return setting;
}

describe("permessage-deflate parameters from the handshake answer", () => {
  const counter = { inc() {} };
  it.each([
    ["permessage-deflate; server_no_context_takeover", 15],
    ["permessage-deflate; server_no_context_takeover; client_max_window_bits=15", 15],
    ["permessage-deflate; server_no_context_takeover; server_max_window_bits=10", 10],
    ["permessage-deflate; server_max_window_bits=9; server_no_context_takeover", 9],
  ])("%s compresses with a window of %i bits", (answer, windowBits) => {
    expect(negotiatedDeflate(answer, 1024, counter)).toEqual({ windowBits, threshold: 1024, counter });
  });

  it.each([
    [undefined, "nothing negotiated"],
    ["x-other-extension", "another extension"],
    ["permessage-deflate", "no server_no_context_takeover: the compressed bytes could not be shared"],
    ["permessage-deflate; server_no_context_takeover; server_max_window_bits=8", "zlib raises 8 bits to 9, which a 256-byte window may not inflate"],
  ])("%s sends plain frames (%s)", (answer, _why) => {
    expect(negotiatedDeflate(answer, 1024, counter)).toBeUndefined();
  });
});

describe("compressed frames", () => {
  it('compresses "Hello" as RFC 7692 §7.2.3.1 shows, in a final binary frame with RSV1', () => {
    expect(toHex(deflateMessage(hello, 15))).toBe("f248cdc9c90700");
    expect(toHex(outgoingFrame(hello, deflateOf(15, 0)))).toBe("c207f248cdc9c90700");
  });

  it("sends messages below the threshold as plain binary frames and counts only what it deflates", () => {
    const deflate = deflateOf(15, 6);
    expect(toHex(outgoingFrame(hello, deflate))).toBe("820548656c6c6f");
    expect(deflate.count).toBe(0);
    outgoingFrame(Buffer.from("Hello!"), deflate);
    expect(deflate.count).toBe(1);
  });

  it("inflates back to the message with the negotiated window", () => {
    const message = Buffer.from("abcdefgh".repeat(500));
    for (const windowBits of [9, 12, 15]) {
      const compressed = Buffer.concat([deflateMessage(message, windowBits), Buffer.from([0x00, 0x00, 0xff, 0xff])]);
      expect(inflateRawSync(compressed, { windowBits, finishFlush: constants.Z_SYNC_FLUSH })).toEqual(message);
    }
  });

  it("shares one compressed frame between sockets on the same call id and window", () => {
    const response = create(EchoResponseSchema, { text: "x".repeat(2000) });
    const deflate15 = deflateOf(15, 1024);
    const otherSocket15 = { ...deflate15 };
    const deflate10 = deflateOf(10, 1024);
    const first = messageFrameOf(EchoResponseSchema, response, 1, deflate15);
    expect(messageFrameOf(EchoResponseSchema, response, 1, otherSocket15)).toBe(first);
    expect(deflate15.count).toBe(1);
    expect(messageFrameOf(EchoResponseSchema, response, 1, deflate10)).not.toBe(first);
    expect(deflate10.count).toBe(1);
    const plain = messageFrameOf(EchoResponseSchema, response, 1);
    expect(plain[0]).toBe(0x82);
    expect(first[0]).toBe(0xc2);
    expect(first[1]).toBe(first.length - 2); // compressed to under 126 bytes: a 2-byte header
    const serverFrame = toBinary(
      ServerFrameSchema,
      create(ServerFrameSchema, { kind: { case: "message", value: { id: 1, payload: toBinary(EchoResponseSchema, response) } } }),
    );
    expect(inflateRawSync(Buffer.concat([first.subarray(2), Buffer.from([0x00, 0x00, 0xff, 0xff])]), { finishFlush: constants.Z_SYNC_FLUSH })).toEqual(
      Buffer.from(serverFrame),
    );
  });

  it("deflates a response once per window whatever the call ids, each frame inflating to exactly its plain ServerFrame", () => {
    const response = create(EchoResponseSchema, { text: "the quick brown fox jumps over the lazy dog; ".repeat(60) });
    const payload = toBinary(EchoResponseSchema, response);
    // 1, 300 and 70000 have varints of 1, 2 and 3 bytes: the inner length, and so the prefix, changes with them.
    const ids = [1, 300, 70000, 2, 7, 128, 16384, 5, 99, 2 ** 31];
    for (const windowBits of [9, 15]) {
      const deflate = deflateOf(windowBits, 1024);
      for (const id of ids) {
        const frame = messageFrameOf(EchoResponseSchema, response, id, deflate);
        expect(frame[0]).toBe(0xc2);
        expect(frame[1]).toBe(frame.length - 2);
        const inflated = inflateRawSync(Buffer.concat([frame.subarray(2), Buffer.from([0x00, 0x00, 0xff, 0xff])]), {
          windowBits,
          finishFlush: constants.Z_SYNC_FLUSH,
        });
        expect(inflated).toEqual(Buffer.from(encodeMessageFrame(id, payload, "")));
        // The plain frame for the same id is the same ServerFrame.
        expect(messageFrameOf(EchoResponseSchema, response, id)).toEqual(webSocketBinaryFrame(inflated));
      }
      expect(deflate.count).toBe(1);
    }
  });
});
