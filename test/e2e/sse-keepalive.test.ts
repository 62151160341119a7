import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { ChatService } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { bearer, clientFor, transportFor } from "../helpers/clients.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { readSse, ssePath, type RawSseEvent } from "../helpers/sse.js";

const intervalMs = 60_000;
const keepAlive: RawSseEvent = { event: "comment", data: "keep-alive" };

/**
 * The keep-alive promise of docs/protocol.md: the first `: keep-alive` comes
 * within one `--keepalive` interval of the stream's last write (a proxy with
 * an idle timeout of twice the interval never cuts it), and an idle stream
 * gets one per interval, not more.
 *
 * The heartbeat is driven, not waited for: only `setInterval` is faked (the
 * bridge's one shared keep-alive timer is created when the first stream
 * opens), so `advanceTimersByTime` runs its ticks at once, while the socket,
 * the 100 ms hold and the end-of-turn flush run on real time. A chat message
 * sent after the advance shows on the wire whether the comment came first:
 * no wall-clock assertion anywhere. Gzip-encoded (fetch accepts gzip), the
 * comments go through the compressed stream, flushed like any event.
 */
describe.each([
  ["plain", false],
  ["gzip", true],
])("SSE keep-alive (%s)", (_encoding, gzip) => {
  let server: TestServer;
  let token: string;
  beforeAll(async () => {
    // Long enough that no real tick can happen during the test if faking failed.
    server = await startTestServer({ config: { keepaliveMs: intervalMs, sseCompression: gzip } });
    token = await server.token("alice");
  });
  afterEach(() => {
    vi.useRealTimers();
  });
  afterAll(() => server.close());

  it("sends the first comment within one interval of the last write, then one per interval", async () => {
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] });
    const chat = clientFor(ChatService, transportFor(server.url, "connect", "1.1"));
    const room = "keepalive";
    const send = (text: string) => chat.send({ room, text }, bearer(token));
    const response = await fetch(`${server.url}${ssePath("rivulet.chat.v1.ChatService/Subscribe", { room })}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(response.headers.get("content-encoding")).toBe(gzip ? "gzip" : null);
    const events = readSse(response);
    const next = async () => (await events.next()).value as RawSseEvent;
    const message = (text: string) => expect.objectContaining({ data: expect.stringContaining(`"text":"${text}"`) }) as RawSseEvent;
    try {
      // The stream opened (after its hold) with `retry:`: its last write.
      expect(await next()).toEqual({ event: "retry", data: "2000" });

      // One interval after it: the comment is out before anything sent later.
      vi.advanceTimersByTime(intervalMs);
      await send("after one interval");
      expect(await next()).toEqual(keepAlive);
      expect(await next()).toEqual(message("after one interval"));

      // A write restarts the count: half an interval later, no comment yet.
      vi.advanceTimersByTime(intervalMs / 2);
      await send("half an interval later");
      expect(await next()).toEqual(message("half an interval later"));

      // One interval after that write, the comment; an idle stream then gets one per interval.
      vi.advanceTimersByTime(intervalMs);
      vi.advanceTimersByTime(intervalMs);
      await send("two intervals later");
      expect([await next(), await next(), await next()]).toEqual([keepAlive, keepAlive, message("two intervals later")]);
    } finally {
      await events.return(undefined);
    }
  });
});
