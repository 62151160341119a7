import { describe, expect, it } from "vitest";
import { readSseEvents } from "../../src/wire/read-sse-events.js";

/** A body of these byte chunks; `cancelled` resolves with the reason when its reader cancels it. */
function bodyOf(chunks: readonly Uint8Array<ArrayBuffer>[], endsByItself = true) {
  let cancelled!: (reason: unknown) => void;
  const cancel = new Promise<unknown>((resolve) => (cancelled = resolve));
  const body = new ReadableStream<Uint8Array<ArrayBuffer>>({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(chunk);
      if (endsByItself) controller.close();
    },
    cancel: (reason) => cancelled(reason),
  });
  return { body, cancel };
}

const bytes = (text: string) => new TextEncoder().encode(text);

describe("readSseEvents: an event-stream body as parsed events", () => {
  it("decodes UTF-8 split between chunks and parses events split anywhere", async () => {
    const all = bytes("retry: 1500\r\nid: c1\r\ndata: caf\u00e9\r\n\r\nevent: end\rdata: {}\r\r");
    // Cut between a CR and its LF, and inside the two bytes of "é".
    const betweenCrLf = all.indexOf(10);
    const insideE = all.indexOf(0xc3) + 1;
    const { body } = bodyOf([all.slice(0, betweenCrLf), all.slice(betweenCrLf, insideE), all.slice(insideE)]);
    const retries: number[] = [];
    let chunks = 0;
    const events = [];
    for await (const event of readSseEvents(body, { onChunk: () => chunks++, onRetry: (ms) => retries.push(ms) })) events.push(event);
    expect(events).toEqual([
      { type: "message", data: "caf\u00e9", lastEventId: "c1" },
      { type: "end", data: "{}", lastEventId: "c1" },
    ]);
    expect(retries).toEqual([1500]);
    expect(chunks).toBe(3);
  });

  it("cancels the body when the reader stops early", async () => {
    const { body, cancel } = bodyOf([bytes("data: 1\n\ndata: 2\n\n")], false);
    for await (const event of readSseEvents(body)) {
      expect(event.data).toBe("1");
      break;
    }
    await cancel;
  });

  it("throws resource_exhausted for an event over the limit", async () => {
    const { body, cancel } = bodyOf([bytes(`data: ${"x".repeat(100)}`)], false);
    await expect(async () => {
      for await (const _ of readSseEvents(body, { maxEventLength: 64 })) expect.fail("no event expected");
    }).rejects.toThrow(/over 64 characters/);
    await cancel;
  });
});
