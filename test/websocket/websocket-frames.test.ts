import { create, toBinary } from "@bufbuild/protobuf";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ServerFrameSchema } from "../../gen/rivulet/bridge/v1/bridge_pb.js";
import { CountResponseSchema, EchoResponseSchema } from "../../gen/rivulet/testing/v1/counter_pb.js";
import { decodeClientFrame, encodeEndFrame, encodeMessageFrame, encodePongFrame, varintSize, WebSocketFrameError } from "../../src/bridge/websocket/frames.js";
import { binaryOf } from "../../src/bridge/encodings.js";
import { cursorOf } from "../../src/wire/cursor-field.js";

const hex = (text: string) => Uint8Array.from(Buffer.from(text.replace(/\s+/g, ""), "hex"));
const toHex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

describe("client frames decode", () => {
  it("reads a call with id, method, request bytes and headers", () => {
    // ClientFrame.call(1){ id(1)=1, method(2)="a/b", request(3)=08 01, headers(4)={"k": "v"} }
    const frame = decodeClientFrame(hex("0a 13 0801 1203 612f62 1a02 0801 2206 0a016b 120176"));
    expect(frame.kind.case).toBe("call");
    const call = frame.kind.value as { id: number; method: string; request: Uint8Array; headers: Record<string, string> };
    expect(call.id).toBe(1);
    expect(call.method).toBe("a/b");
    expect(toHex(call.request)).toBe("0801");
    expect(call.headers).toEqual({ k: "v" });
  });

  it("reads cancel and ping", () => {
    expect(decodeClientFrame(hex("12 02 0803")).kind).toMatchObject({ case: "cancel", value: { id: 3 } });
    expect(decodeClientFrame(hex("1a 02 0809")).kind).toMatchObject({ case: "ping", value: { nonce: 9n } });
  });

  it("reads an empty frame as no kind (ignored by the server)", () => {
    expect(decodeClientFrame(new Uint8Array()).kind.case).toBeUndefined();
  });

  it.each([
    ["a varint longer than 10 bytes", "ffffffffffffffffffffff"],
    ["a length past the end", "0a 05 0801"],
    ["wire type 7", "0f"],
    ["a truncated tag", "80"],
  ])("refuses %s with close code 1007", (_what, bytes) => {
    let caught: unknown;
    try {
      decodeClientFrame(hex(bytes));
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(WebSocketFrameError);
    expect((caught as WebSocketFrameError).closeCode).toBe(1007);
  });
});

describe("server frames encode", () => {
  it("builds the message envelope by hand", () => {
    // ServerFrame.message(1){ id(1)=1, payload(2)=08 2a, cursor(3)="c1" }
    expect(toHex(encodeMessageFrame(1, hex("082a"), "c1"))).toBe("0a0a" + "0801" + "1202082a" + "1a026331");
    // Multi-byte varints: id 300 is ac 02.
    expect(toHex(encodeMessageFrame(300, hex("08"), ""))).toBe("0a06" + "08ac02" + "120108");
    // Proto3 zero values are omitted: an empty payload and cursor leave only the id.
    expect(toHex(encodeMessageFrame(5, new Uint8Array(), ""))).toBe("0a020805");
  });

  it("equals toBinary(ServerFrameSchema) for any id, payload and cursor", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), fc.uint8Array({ maxLength: 300 }), fc.string({ maxLength: 200 }), (id, payload, cursor) => {
        const expected = toBinary(ServerFrameSchema, create(ServerFrameSchema, { kind: { case: "message", value: { id, payload, cursor } } }));
        expect(toHex(encodeMessageFrame(id, payload, cursor))).toBe(toHex(expected));
      }),
    );
  });

  it("encodes end with and without an error, and pong", () => {
    expect(toHex(encodeEndFrame(5))).toBe("12020805");
    // end(2){ id=5, error(2){ code(1)="not_found", message(2)="x" } }
    expect(toHex(encodeEndFrame(5, { code: "not_found", message: "x" }))).toBe("1212" + "0805" + "120e" + "0a096e6f745f666f756e64" + "120178");
    expect(toHex(encodePongFrame(7n))).toBe("1a020807");
  });

  it("sizes varints", () => {
    expect([0, 127, 128, 16383, 16384, 0xffffffff].map(varintSize)).toEqual([1, 1, 2, 2, 3, 5]);
  });
});

describe("payloads", () => {
  it("are encoded once per response object", () => {
    const response = create(CountResponseSchema, { value: 3, cursor: "3" });
    const first = binaryOf(CountResponseSchema, response);
    expect(binaryOf(CountResponseSchema, response)).toBe(first);
    expect(toHex(first)).toBe("0803" + "120133");
    expect(binaryOf(CountResponseSchema, create(CountResponseSchema, { value: 3, cursor: "3" }))).not.toBe(first);
  });

  it("carry the cursor of messages that have a top-level cursor field", () => {
    expect(cursorOf(CountResponseSchema, create(CountResponseSchema, { value: 1, cursor: "1" }))).toBe("1");
    expect(cursorOf(EchoResponseSchema, create(EchoResponseSchema, { text: "hi" }))).toBe("");
  });
});
