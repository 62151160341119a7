import { once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { createSseWriter, type SseWriter, type SseWriterOptions } from "../../src/bridge/sse/writer.js";

/**
 * The SSE writer on a real node:http response, read by a real client. Counting
 * the response's `write` calls shows the batching: events queued in one tick
 * leave in one write.
 */
describe("SSE writer", () => {
  let server: http.Server | undefined;
  afterEach(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
    server = undefined;
  });

  /** Serves one request with a writer driven by `drive`; returns the client's status, headers, body and the write count. */
  async function serve(drive: (writer: SseWriter) => void, options: Partial<SseWriterOptions> = {}) {
    let writes = 0;
    server = http.createServer((_req, res) => {
      const write = res.write.bind(res) as (chunk: Uint8Array) => boolean;
      (res as unknown as { write(chunk: Uint8Array): boolean }).write = (chunk) => {
        writes++;
        return write(chunk);
      };
      drive(
        createSseWriter(res, {
          headers: { "content-type": "text/event-stream; charset=utf-8" },
          retryMs: 1000,
          conflate: false,
          holdMs: 60_000,
          onClose: () => undefined,
          ...options,
        }),
      );
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    const body = await response.text();
    return { status: response.status, contentType: response.headers.get("content-type"), body, writes };
  }

  const event = (n: number) => Buffer.from(`id: ${n}\ndata: {"n":${n}}\n\n`);

  it("sends retry first, and everything queued in one tick in one write", async () => {
    const result = await serve((writer) => {
      for (let n = 1; n <= 5; n++) writer.message(event(n));
      setImmediate(() => setImmediate(() => writer.end("event: end\ndata: {}\n\n")));
    });
    expect(result.body).toBe(`retry: 1000\n\n${[1, 2, 3, 4, 5].map((n) => event(n).toString()).join("")}event: end\ndata: {}\n\n`);
    expect(result.writes).toBe(1);
  });

  it("writes large events queued in one tick as they are, one write each in one vectored write, whole and in order", async () => {
    const large = (n: number) => Buffer.from(`id: ${n}\ndata: "${String(n).repeat(1024)}"\n\n`);
    const result = await serve((writer) => {
      for (let n = 1; n <= 3; n++) writer.message(large(n));
      setImmediate(() => setImmediate(() => writer.end("event: end\ndata: {}\n\n")));
    });
    expect(result.body).toBe(`retry: 1000\n\n${[1, 2, 3].map((n) => large(n).toString()).join("")}event: end\ndata: {}\n\n`);
    // retry and the three events, not joined first.
    expect(result.writes).toBe(4);
  });

  it("conflating, keeps only the newest message queued in a tick", async () => {
    const result = await serve(
      (writer) => {
        for (let n = 1; n <= 5; n++) writer.message(event(n));
        writer.end("event: end\ndata: {}\n\n");
      },
      { conflate: true },
    );
    expect(result.body).toBe(`retry: 1000\n\n${event(5).toString()}event: end\ndata: {}\n\n`);
  });

  it("before anything was sent, fails with a real status and JSON, or answers 204", async () => {
    expect(await serve((writer) => writer.fail(403, '{"code":"permission_denied","message":"no"}'))).toMatchObject({
      status: 403,
      contentType: "application/json",
      body: '{"code":"permission_denied","message":"no"}',
    });
    await new Promise((resolve) => server?.close(resolve));
    expect(await serve((writer) => writer.noContent())).toMatchObject({ status: 204, body: "" });
  });

  it("opens a quiet stream after holdMs with just retry", async () => {
    let writer: SseWriter | undefined;
    server = http.createServer((_req, res) => {
      writer = createSseWriter(res, { headers: {}, retryMs: 1000, conflate: false, holdMs: 10, onClose: () => undefined });
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    // fetch resolves when the headers arrive: the hold timer sent them with nothing to say.
    const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    expect(writer!.state()).toBe("open");
    writer!.end(": bye\n\n");
    expect(await response.text()).toBe("retry: 1000\n\n: bye\n\n");
  });
});
