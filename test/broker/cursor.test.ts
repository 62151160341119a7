import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { decodeCursor, encodeCursor, encodeEntryCursor, entryStamp } from "../../src/broker/cursor.js";

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

  it("encodes a stamped position as version 2: the version 1 layout, then the stamp", () => {
    // version 2 | FNV-1a("t") | epoch length 1 | "e" | offset 1 | stamp 0x01020304
    const bytes = Buffer.from(encodeCursor("t", { epoch: "e", offset: 1, stamp: 0x01020304 }), "base64url");
    expect(bytes[0]).toBe(2);
    expect([...bytes.subarray(5)]).toEqual([1, 0x65, 1, 1, 2, 3, 4]);
    const plain = Buffer.from(encodeCursor("t", { epoch: "e", offset: 1 }), "base64url");
    expect([...bytes.subarray(1, 5)]).toEqual([...plain.subarray(1, 5)]);
  });

  it("stamps an entry's cursor with its append time modulo 2^32, short and URL-safe", () => {
    const time = 1_764_686_400_123; // 2025-12-02T14:40:00.123Z
    expect(entryStamp(time)).toBe(time % 2 ** 32);
    expect(entryStamp(2 ** 32 + 7)).toBe(7);
    const cursor = encodeEntryCursor("chat.room/lobby", { position: { epoch: "Ab3_x-9Q", offset: 300 }, data: new Uint8Array(0), time });
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(cursor.length).toBeLessThanOrEqual(30);
    expect(decodeCursor("chat.room/lobby", cursor)).toEqual({ epoch: "Ab3_x-9Q", offset: 300, stamp: time % 2 ** 32 });
  });

  it("decodes a version 1 cursor without a stamp", () => {
    expect(decodeCursor("t", encodeCursor("t", { epoch: "e", offset: 1 }))).toStrictEqual({ epoch: "e", offset: 1 });
  });

  it("refuses a stamp out of range when encoding", () => {
    for (const stamp of [-1, 2 ** 32, 1.5]) expect(() => encodeCursor("t", { epoch: "e", offset: 1, stamp })).toThrow("stamp out of range");
  });

  it("refuses a version 2 cursor cut short in its stamp or its offset", () => {
    const good = Buffer.from(encodeCursor("t", { epoch: "e", offset: 1000, stamp: 0xffffffff }), "base64url");
    for (let cut = 1; cut <= 5; cut++) {
      const truncated = good.subarray(0, good.length - cut).toString("base64url");
      expect(() => decodeCursor("t", truncated), `${cut} bytes cut`).toThrow("malformed cursor");
    }
  });

  it("refuses a cursor of another topic", () => {
    const cursor = encodeCursor("chat.room/a", { epoch: "e1", offset: 5 });
    expect(() => decodeCursor("chat.room/b", cursor)).toThrow("cursor belongs to another stream");
  });

  it.each([
    "",
    "not a cursor",
    "!!!!",
    "AQ",
    "A".repeat(200),
    Buffer.from([3, 0, 0, 0, 0, 1, 65, 1]).toString("base64url"),
    Buffer.from([2, 0, 0, 0, 0, 1, 65, 1]).toString("base64url"),
  ])("refuses malformed cursor %j with invalid_argument", (cursor) => {
    expect(() => decodeCursor("t", cursor)).toThrow(expect.objectContaining({ code: 3 }) as Error);
  });

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

  it("round-trips any safe offset, epoch and stamp (property)", () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 16 }),
        fc.stringMatching(/^[A-Za-z0-9_-]{1,12}$/),
        fc.maxSafeNat(),
        fc.nat({ max: 2 ** 32 - 1 }),
        (topic, epoch, offset, stamp) => {
          expect(decodeCursor(topic, encodeCursor(topic, { epoch, offset, stamp }))).toEqual({ epoch, offset, stamp });
        },
      ),
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
