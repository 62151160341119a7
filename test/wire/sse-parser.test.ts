import fc from "fast-check";
import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { createSseParser, type ParsedSseEvent } from "../../src/wire/sse-parser.js";
import { encodeComment, encodeEvent, encodeRetry } from "../../src/bridge/sse/encoder.js";

function parse(chunks: readonly string[]) {
  const events: ParsedSseEvent[] = [];
  const comments: string[] = [];
  const retries: number[] = [];
  const parser = createSseParser({ event: (e) => events.push(e), comment: (c) => comments.push(c), retry: (r) => retries.push(r) });
  for (const chunk of chunks) parser.feed(chunk);
  return { events, comments, retries };
}

describe("SSE parser", () => {
  it("throws resource_exhausted for a line or an event over its limit, so memory stays bounded", () => {
    const line = createSseParser({ event: () => undefined }, 64);
    expect(() => line.feed(`data: ${"x".repeat(70)}`)).toThrow(expect.objectContaining({ code: Code.ResourceExhausted }));
    const event = createSseParser({ event: () => undefined }, 64);
    expect(() => {
      for (let i = 0; i < 10; i++) event.feed(`data: ${"x".repeat(10)}\n`);
    }).toThrow(/over 64 characters/);
    const fine = createSseParser({ event: () => undefined }, 64);
    for (let i = 0; i < 100; i++) fine.feed(`data: ${"x".repeat(30)}\n\n`);
  });

  it("reads ids, data, event types, comments and retry", () => {
    const { events, comments, retries } = parse(["\ufeffretry: 2000\n\n: keep-alive\n\nid: c1\ndata: {}\n\nevent: end\ndata: {}\n\n"]);
    expect(retries).toEqual([2000]);
    expect(comments).toEqual(["keep-alive"]);
    expect(events).toEqual([
      { type: "message", data: "{}", lastEventId: "c1" },
      { type: "end", data: "{}", lastEventId: "c1" },
    ]);
  });

  it("accepts CR, LF and CRLF line endings, split anywhere across chunks", () => {
    const text = "id: a\r\ndata: x\rdata: y\n\r\nid: b\rdata: z\r\r";
    const expected = [
      { type: "message", data: "x\ny", lastEventId: "a" },
      { type: "message", data: "z", lastEventId: "b" },
    ];
    for (let cut = 0; cut <= text.length; cut++) {
      expect(parse([text.slice(0, cut), text.slice(cut)]).events).toEqual(expected);
    }
    expect(parse([...text]).events).toEqual(expected);
  });

  it("ignores an id with NUL, a non-numeric retry and an event without data", () => {
    const { events, retries } = parse(["id: ok\n\nid: a\0b\nretry: 1s\ndata: d\n\nevent: x\n\n"]);
    expect(events).toEqual([{ type: "message", data: "d", lastEventId: "ok" }]);
    expect(retries).toEqual([]);
  });

  it("reads back whatever the bridge's encoder writes", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.string(), fc.stringMatching(/^[A-Za-z0-9_-]{1,20}$/)), { maxLength: 5 }),
        fc.integer({ min: 1, max: 7 }),
        (items, size) => {
          const text = encodeRetry(10) + items.map(([data, id]) => encodeComment("k") + encodeEvent({ id, data })).join("");
          const chunks = text.match(new RegExp(`[^]{1,${size}}`, "g")) ?? [];
          const { events } = parse(chunks);
          expect(events).toEqual(items.map(([data, id]) => ({ type: "message", data: data.replace(/\r\n|\r/g, "\n"), lastEventId: id })));
        },
      ),
    );
  });
});
