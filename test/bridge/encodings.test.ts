import { gunzipSync } from "node:zlib";
import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { CountResponseSchema, CounterService, EchoResponseSchema } from "../../gen/rivulet/testing/v1/counter_pb.js";
import { binaryOf, encodingsOf } from "../../src/bridge/encodings.js";
import { envelopeOf } from "../../src/bridge/rpc/envelope.js";
import { messageEventOf } from "../../src/bridge/sse/message-event.js";
import { messageFrameOf } from "../../src/bridge/websocket/message-frame.js";
import { createMethodRegistry } from "../../src/call/method-registry.js";
import { counterService } from "../helpers/counter-service.js";

const toHex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

/** One cache per response object for every transport: each encoding made once, the binary one shared by WebSocket and Connect/gRPC. */
describe("response encodings", () => {
  const methods = createMethodRegistry([counterService()], [], new AbortController().signal);
  const count = methods.get(`${CounterService.typeName}/Count`)!;

  it("keep every transport's encoding of a response in one entry", () => {
    const response = create(CountResponseSchema, { value: 3, cursor: "3" });
    const event = messageEventOf(count, response);
    const envelope = envelopeOf(CountResponseSchema, response, "identity");
    const frame = messageFrameOf(CountResponseSchema, response, 1);
    expect(encodingsOf(response)).toMatchObject({
      sseEventWithId: event,
      envelopes: { identity: envelope },
      framesById: new Map([[1, { plain: frame, deflated: undefined }]]),
    });
  });

  it("encode the binary form once for WebSocket frames and Connect/gRPC envelopes", () => {
    const response = create(CountResponseSchema, { value: 3, cursor: "3" });
    const binary = binaryOf(CountResponseSchema, response);
    const envelope = envelopeOf(CountResponseSchema, response, "identity");
    messageFrameOf(CountResponseSchema, response, 1);
    expect(binaryOf(CountResponseSchema, response)).toBe(binary);
    // An envelope (Connect and gRPC alike): flags 0, the length as 4 bytes big-endian (5), then the message.
    expect(toHex(envelope)).toBe("00" + "00000005" + toHex(binary));
    expect(envelopeOf(CountResponseSchema, response, "identity")).toBe(envelope);
  });

  it("compress an envelope once per encoding, and only from 1 KiB on, as connect-node does", () => {
    const small = create(EchoResponseSchema, { text: "hi" });
    expect(envelopeOf(EchoResponseSchema, small, "gzip")).toBe(envelopeOf(EchoResponseSchema, small, "identity"));
    const large = create(EchoResponseSchema, { text: "x".repeat(2000) });
    const gzipped = envelopeOf(EchoResponseSchema, large, "gzip");
    expect(envelopeOf(EchoResponseSchema, large, "gzip")).toBe(gzipped);
    expect(gzipped[0]).toBe(1); // the compressed flag
    expect(gunzipSync(gzipped.subarray(5))).toEqual(Buffer.from(binaryOf(EchoResponseSchema, large)));
    expect(envelopeOf(EchoResponseSchema, large, "br")).not.toBe(gzipped);
  });
});
