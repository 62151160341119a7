import { randomBytes } from "node:crypto";
import { once } from "node:events";
import http2 from "node:http2";
import { gunzipSync, constants as zlibConstants } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatService } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { JobState, ProgressService } from "../../gen/rivulet/progress/v1/progress_pb.js";
import { bearer, clientFor, transportFor } from "../helpers/clients.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { nextEvents, readSse, ssePath, type RawSseEvent } from "../helpers/sse.js";

/** `characters` of padding that gzip cannot shrink, so a gzip-encoded stream backs up as soon as a plain one. */
const padding = (characters = 1000) => randomBytes((characters / 4) * 3).toString("base64");

/**
 * Bytes sent while a reader is stalled must exceed its 4 KiB window plus the
 * server's write buffer, Node's default high-water mark: 16 KiB before Node 22,
 * 64 KiB since. Chat texts are padded to 3,000 characters (the limit is 4,096);
 * progress messages (limit 1,024) are sent in greater number instead.
 */
const chatPaddingLength = 3000;

/**
 * A reader that stops reading: an HTTP/2 stream with a 4 KiB window, paused
 * after its first bytes, so the server cannot write ahead. The bridge stops
 * pulling, and the method's policy from the schema applies: lossless streams
 * end with resource_exhausted once the bounded buffer is full; conflated ones
 * skip to the newest and always deliver the last. The same bounds hold when
 * the stream is gzip-encoded: backpressure counts compressed bytes.
 */
describe.each([
  ["plain", false],
  ["gzip", true],
])("SSE slow consumers follow the method's policy (%s)", (_encoding, gzip) => {
  let server: TestServer;
  let token: string;
  const acceptEncoding = gzip ? { "accept-encoding": "gzip" } : {};
  beforeAll(async () => {
    server = await startTestServer({ config: { subscriberBuffer: 8, sseCompression: gzip } });
    token = await server.token("owner", ["worker"]);
  });
  afterAll(() => server.close());

  /** Opens an SSE stream on a tight HTTP/2 window, reads its first bytes, pauses, runs `meanwhile`, then reads the rest. */
  async function stallThen(path: string, meanwhile: () => Promise<void>): Promise<RawSseEvent[]> {
    const session = http2.connect(server.url, { settings: { initialWindowSize: 4096 } });
    try {
      const stream = session.request({ ":method": "GET", ":path": path, authorization: `Bearer ${token}`, ...acceptEncoding });
      const chunks: Buffer[] = [];
      const [headers] = (await once(stream, "response")) as [http2.IncomingHttpHeaders];
      expect(headers["content-encoding"]).toBe(gzip ? "gzip" : undefined);
      await new Promise<void>((resolve) => stream.once("data", (chunk: Buffer) => (chunks.push(chunk), resolve())));
      stream.pause();
      await meanwhile();
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.resume();
      await new Promise((resolve) => stream.once("end", resolve));
      const body = Buffer.concat(chunks);
      return parse((gzip ? gunzipSync(body, { finishFlush: zlibConstants.Z_SYNC_FLUSH }) : body).toString("utf8"));
    } finally {
      session.close();
    }
  }

  it("lossless (chat): ends with resource_exhausted; resuming from the last id loses nothing", async () => {
    const chat = clientFor(ChatService, transportFor(server.url, "connect", "2"));
    const room = "slow-chat";
    const first = (await chat.send({ room, text: "m0" }, bearer(token))).message!.cursor;
    const total = 80;
    const events = await stallThen(ssePath("rivulet.chat.v1.ChatService/Subscribe", { room }, { lastEventId: first }), async () => {
      for (let i = 1; i <= total; i++) await chat.send({ room, text: `m${i} ${padding(chatPaddingLength)}` }, bearer(token));
    });
    const messages = events.filter((e) => e.event === undefined);
    const texts = messages.map((e) => (JSON.parse(e.data) as { message: { text: string } }).message.text.split(" ")[0]);
    expect(texts).toEqual(texts.map((_, i) => `m${i + 1}`)); // a prefix, in order, nothing skipped
    expect(texts.length).toBeLessThan(total);
    expect(events.at(-1)).toEqual({
      event: "error",
      data: '{"code":"resource_exhausted","message":"subscriber too slow: buffer full; resume from the last cursor"}',
    });

    const resumed = readSse(
      await fetch(`${server.url}${ssePath("rivulet.chat.v1.ChatService/Subscribe", { room })}`, {
        headers: { authorization: `Bearer ${token}`, "last-event-id": messages.at(-1)!.id! },
      }),
    );
    const rest = await nextEvents(resumed, total - texts.length);
    expect(rest.map((e) => (JSON.parse(e.data) as { message: { text: string } }).message.text.split(" ")[0])).toEqual(
      Array.from({ length: total - texts.length }, (_, i) => `m${texts.length + i + 1}`),
    );
    await resumed.return(undefined);
  });

  it("conflate (progress): skips intermediate snapshots but delivers the terminal one, then end", async () => {
    const progress = clientFor(ProgressService, transportFor(server.url, "connect", "2"));
    const { job } = await progress.start({ kind: "export" }, bearer(token));
    const reports = 400;
    const events = await stallThen(ssePath("rivulet.progress.v1.ProgressService/Watch", { jobId: job!.id }), async () => {
      for (let i = 1; i < reports; i++) await progress.report({ jobId: job!.id, fraction: i / reports, message: `${i} ${padding()}` }, bearer(token));
      await progress.report({ jobId: job!.id, state: JobState.SUCCEEDED, fraction: 1, message: "done" }, bearer(token));
    });
    const jobs = events
      .filter((e) => e.event === undefined)
      .map((e) => (JSON.parse(e.data) as { job: { state: string; sequence: string; message: string } }).job);
    expect(jobs.length).toBeLessThan(reports / 2);
    const sequences = jobs.map((j) => Number(j.sequence));
    expect(sequences).toEqual([...new Set(sequences)].sort((a, b) => a - b));
    expect(jobs.at(-1)).toMatchObject({ state: "JOB_STATE_SUCCEEDED", message: "done", sequence: String(reports + 1) });
    expect(events.at(-1)).toEqual({ event: "end", data: "{}" });
  });
});

/** The data events of an SSE body (our server writes one `data:` line per event). */
function parse(text: string): RawSseEvent[] {
  return text
    .split("\n\n")
    .filter((block) => /^(event|id|data):/m.test(block))
    .map((block) => {
      const field = (name: string) => new RegExp(`^${name}: (.*)$`, "m").exec(block)?.[1];
      const event = field("event");
      const id = field("id");
      return { ...(event !== undefined ? { event } : {}), ...(id !== undefined ? { id } : {}), data: field("data") ?? "" };
    });
}

describe.each([
  ["plain", false],
  ["gzip", true],
])("SSE drops a client that reads nothing at all (%s)", (_encoding, gzip) => {
  let server: TestServer;
  let token: string;
  beforeAll(async () => {
    server = await startTestServer({ config: { keepaliveMs: 100, sseCompression: gzip } });
    token = await server.token("alice");
  });
  afterAll(() => server.close());

  it("resets the stream after about two keep-alive intervals without a byte read, and counts it", async () => {
    const chat = clientFor(ChatService, transportFor(server.url, "connect", "2"));
    const room = "stalled";
    const first = (await chat.send({ room, text: "m0" }, bearer(token))).message!.cursor;
    const session = http2.connect(server.url, { settings: { initialWindowSize: 4096 } });
    try {
      const stream = session.request({
        ":method": "GET",
        ":path": ssePath("rivulet.chat.v1.ChatService/Subscribe", { room }, { lastEventId: first }),
        authorization: `Bearer ${token}`,
        ...(gzip ? { "accept-encoding": "gzip" } : {}),
      });
      const [headers] = (await once(stream, "response")) as [http2.IncomingHttpHeaders];
      expect(headers["content-encoding"]).toBe(gzip ? "gzip" : undefined);
      stream.pause();
      // The server resets the stream (CANCEL); even a paused client sees that.
      const reset = new Promise((resolve) => stream.once("close", resolve));
      // More than the stream's window and the server's write buffer: the server's writes back up.
      for (let i = 1; i <= 40; i++) await chat.send({ room, text: `m${i} ${padding(chatPaddingLength)}` }, bearer(token));
      await reset;
      expect(stream.rstCode).toBe(http2.constants.NGHTTP2_CANCEL);
    } finally {
      session.close();
    }
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/^rivulet_slow_consumers_dropped_total\{transport="sse"\} 1$/m);
  });
});
