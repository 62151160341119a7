import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { errorFromWire, errorFromWireJson } from "../../src/wire/error-json.js";

const fallback = () => new ConnectError("HTTP 502", Code.Unavailable);
const plain = (error: ConnectError) => ({ code: error.code, message: error.rawMessage, details: error.details });

describe("errorFromWireJson: the Connect error JSON as a ConnectError", () => {
  it("reads the code, the message and base64 details", () => {
    const error = errorFromWireJson('{"code":"resource_exhausted","message":"subscriber too slow","details":[{"type":"x.y.Z","value":"AQI"}]}', fallback());
    expect(plain(error)).toEqual({
      code: Code.ResourceExhausted,
      message: "subscriber too slow",
      details: [{ type: "x.y.Z", value: new Uint8Array([1, 2]), debug: undefined }],
    });
  });

  it("takes a missing or null message as empty", () => {
    expect(plain(errorFromWireJson('{"code":"unavailable"}', fallback()))).toEqual({ code: Code.Unavailable, message: "", details: [] });
    expect(plain(errorFromWireJson('{"code":"not_found","message":null}', fallback()))).toEqual({ code: Code.NotFound, message: "", details: [] });
  });

  it("reads a code it does not know as unknown, not as the fallback's code", () => {
    expect(plain(errorFromWireJson('{"code":"brand_new","message":"from a newer server"}', fallback()))).toEqual({
      code: Code.Unknown,
      message: "from a newer server",
      details: [],
    });
  });

  it.each([
    ["not JSON (a proxy's page)", "<html>Bad Gateway</html>"],
    ["empty", ""],
    ["JSON but not an object", "[1]"],
    ["null", "null"],
    ["an object without a code", '{"message":"hello"}'],
    ["a code that is not a string", '{"code":14,"message":"hello"}'],
    ["a message that is not a string", '{"code":"internal","message":7}'],
    ["a malformed detail", '{"code":"internal","details":[{"type":"x.y.Z"}]}'],
  ])("answers the fallback itself for %s", (_name, text) => {
    const given = fallback();
    expect(errorFromWireJson(text, given)).toBe(given);
  });
});

describe("errorFromWire: a WebSocket end's error fields", () => {
  it("reads them as the same JSON", () => {
    expect(plain(errorFromWire({ code: "permission_denied", message: "not yours" }, fallback()))).toEqual({
      code: Code.PermissionDenied,
      message: "not yours",
      details: [],
    });
    expect(plain(errorFromWire({ code: "", message: "no code" }, fallback()))).toEqual({ code: Code.Unknown, message: "no code", details: [] });
  });
});
