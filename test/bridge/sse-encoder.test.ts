import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { checkEventId, encodeComment, encodeEnd, encodeError, encodeEvent, encodeRetry, eventIdProblem } from "../../src/bridge/sse/encoder.js";

/** The SSE wire format, checked against literal text (WHATWG HTML §9.2.5, §9.2.6). */
describe("SSE encoder", () => {
  it("writes a message event: id, then one data line, then a blank line", () => {
    expect(encodeEvent({ id: "AQID", data: '{"value":1}' })).toBe('id: AQID\ndata: {"value":1}\n\n');
  });

  it("writes the event type first", () => {
    expect(encodeEvent({ event: "gap", id: "c1", data: "{}" })).toBe("event: gap\nid: c1\ndata: {}\n\n");
  });

  it("splits data on LF, CR and CRLF, so no payload can end the event early", () => {
    expect(encodeEvent({ data: "a\nb" })).toBe("data: a\ndata: b\n\n");
    expect(encodeEvent({ data: "a\rb" })).toBe("data: a\ndata: b\n\n");
    expect(encodeEvent({ data: "a\r\nb" })).toBe("data: a\ndata: b\n\n");
    expect(encodeEvent({ data: "a\r\n\nb\r" })).toBe("data: a\ndata: \ndata: b\ndata: \n\n");
  });

  it("keeps one data line for an empty payload, which browsers would otherwise discard", () => {
    expect(encodeEvent({ data: "" })).toBe("data: \n\n");
  });

  it("rejects CR, LF and NUL in ids and CR or LF in event types", () => {
    expect(() => encodeEvent({ id: "a\nb", data: "" })).toThrow("SSE event id must not contain NUL, CR or LF");
    expect(() => encodeEvent({ id: "a\rb", data: "" })).toThrow("SSE event id must not contain NUL, CR or LF");
    expect(() => encodeEvent({ id: "a\0b", data: "" })).toThrow("SSE event id must not contain NUL, CR or LF");
    expect(() => encodeEvent({ event: "a\r\nb", data: "" })).toThrow("SSE event type must be non-empty, without CR or LF");
    expect(() => encodeEvent({ event: "", data: "" })).toThrow("SSE event type must be non-empty, without CR or LF");
  });

  it("rejects ids over 128 characters", () => {
    expect(encodeEvent({ id: "x".repeat(128), data: "" })).toBe(`id: ${"x".repeat(128)}\ndata: \n\n`);
    expect(() => encodeEvent({ id: "x".repeat(129), data: "" })).toThrow("SSE event id must be at most 128 characters");
  });

  it("writes comments, one line each, as keep-alives", () => {
    expect(encodeComment("keep-alive")).toBe(": keep-alive\n\n");
    expect(encodeComment("a\nb")).toBe(": a\n: b\n\n");
    expect(encodeComment("")).toBe(":\n\n");
  });

  it("writes retry as whole milliseconds", () => {
    expect(encodeRetry(2000)).toBe("retry: 2000\n\n");
    expect(encodeRetry(0)).toBe("retry: 0\n\n");
    expect(() => encodeRetry(1.5)).toThrow("SSE retry must be a whole number of milliseconds");
    expect(() => encodeRetry(-1)).toThrow("SSE retry must be a whole number of milliseconds");
  });

  it("writes end and error events; errors as Connect error JSON", () => {
    expect(encodeEnd()).toBe("event: end\ndata: {}\n\n");
    expect(encodeError(new ConnectError("subscriber too slow", Code.ResourceExhausted))).toBe(
      'event: error\ndata: {"code":"resource_exhausted","message":"subscriber too slow"}\n\n',
    );
    // A message with a line break still makes one event: JSON escapes it.
    expect(encodeError(new ConnectError("two\nlines", Code.Internal))).toBe('event: error\ndata: {"code":"internal","message":"two\\nlines"}\n\n');
  });

  it("spells codes as the Connect protocol does", () => {
    expect(encodeError(new ConnectError("no", Code.PermissionDenied))).toBe('event: error\ndata: {"code":"permission_denied","message":"no"}\n\n');
    expect(encodeError(new ConnectError("late", Code.DeadlineExceeded))).toBe('event: error\ndata: {"code":"deadline_exceeded","message":"late"}\n\n');
  });

  it("checks ids that clients send back", () => {
    expect(eventIdProblem("AbC-_1")).toBeUndefined();
    expect(checkEventId("", "Last-Event-ID")).toBe("");
    expect(() => checkEventId("a\nb", "Last-Event-ID")).toThrow(new ConnectError("Last-Event-ID must not contain NUL, CR or LF", Code.InvalidArgument));
    expect(() => checkEventId("x".repeat(129), "lastEventId")).toThrow(new ConnectError("lastEventId must be at most 128 characters", Code.InvalidArgument));
  });
});
