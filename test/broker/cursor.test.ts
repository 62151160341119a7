import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { decodeCursor, encodeCursor } from "../../src/broker/cursor.js";

describe("cursors", () => {
  it("round-trips positions and stays short and URL-safe", () => {
    const cursor = encodeCursor("chat.room/lobby", { epoch: "Ab3_x-9Q", offset: 300 });
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(cursor.length).toBeLessThanOrEqual(24);
    expect(decodeCursor("chat.room/lobby", cursor)).toEqual({ epoch: "Ab3_x-9Q", offset: 300 });
  });

  it("encodes a known position to known bytes", () => {
    // version 1 | FNV-1a("t") = 0xf9e6e6ef... | epoch length 1 | "e" | offset 1
    const bytes = Buffer.from(encodeCursor("t", { epoch: "e", offset: 1 }), "base64url");
    expect(bytes[0]).toBe(1);
    expect([...bytes.subarray(5)]).toEqual([1, 0x65, 1]);
  });

  it("refuses a cursor of another topic", () => {
    const cursor = encodeCursor("chat.room/a", { epoch: "e1", offset: 5 });
    expect(() => decodeCursor("chat.room/b", cursor)).toThrow("cursor belongs to another stream");
  });

  it.each(["", "not a cursor", "!!!!", "AQ", "A".repeat(200), Buffer.from([2, 0, 0, 0, 0, 1, 65, 1]).toString("base64url")])(
    "refuses malformed cursor %j with invalid_argument",
    (cursor) => {
      expect(() => decodeCursor("t", cursor)).toThrow(expect.objectContaining({ code: 3 }) as Error);
    },
  );

  it("refuses a truncated offset varint", () => {
    const good = Buffer.from(encodeCursor("t", { epoch: "e", offset: 1000 }), "base64url");
    const truncated = good.subarray(0, good.length - 1).toString("base64url");
    expect(() => decodeCursor("t", truncated)).toThrow("malformed cursor");
  });

  it("round-trips any safe offset and epoch (property)", () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 16 }), fc.stringMatching(/^[A-Za-z0-9_-]{1,12}$/), fc.maxSafeNat(), (topic, epoch, offset) => {
        expect(decodeCursor(topic, encodeCursor(topic, { epoch, offset }))).toEqual({ epoch, offset });
      }),
    );
  });

  it("never throws anything but a ConnectError on arbitrary input (property)", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 64 }), (input) => {
        try {
          decodeCursor("t", input);
        } catch (error) {
          expect(error).toMatchObject({ code: 3 });
        }
      }),
    );
  });
});
