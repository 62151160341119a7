import { once } from "node:events";
import http from "node:http";
import http2 from "node:http2";
import net, { type AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { writeResponseBlocks } from "../../src/http/batched-writer.js";
import type { HttpResponse } from "../../src/http/mount.js";

/**
 * `writeResponseBlocks` on real node:http and node:http2 responses, read by
 * real clients: the bytes arrive whole and in order, HTTP/1.1 frames all
 * blocks but the last as one chunk, and a client that stops reading makes it
 * return false and the response emit 'drain' once the client reads again.
 */
describe("writeResponseBlocks", () => {
  const cleanup: Array<() => void> = [];
  afterEach(() => {
    for (const step of cleanup.splice(0)) step();
  });

  const block = (fill: string, bytes = 1024) => Buffer.alloc(bytes, fill);

  /** An HTTP/1.1 server whose one response is handed to `serve`. */
  async function http1(serve: (res: http.ServerResponse) => void) {
    const server = http.createServer((_req, res) => serve(res));
    cleanup.push(() => {
      server.closeAllConnections();
      server.close();
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    return (server.address() as AddressInfo).port;
  }

  /** An h2c server whose one response is handed to `serve`, and the client's request for it. */
  async function http2Request(serve: (res: http2.Http2ServerResponse) => void) {
    const server = http2.createServer((_req, res) => serve(res));
    cleanup.push(() => server.close());
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const client = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    cleanup.push(() => client.destroy());
    return client.request({ ":path": "/" });
  }

  it("over HTTP/1.1, sends all blocks but the last as one chunk, then the last, in order", async () => {
    const port = await http1((res) => {
      res.writeHead(200, { "content-type": "application/octet-stream" });
      res.write("start");
      setImmediate(() => {
        writeResponseBlocks(res, [block("a"), block("b"), block("c")]);
        res.end();
      });
    });
    const socket = net.connect(port, "127.0.0.1");
    cleanup.push(() => socket.destroy());
    socket.write("GET / HTTP/1.1\r\nHost: test\r\n\r\n");
    let raw = "";
    for await (const data of socket) {
      raw += (data as Buffer).toString("latin1");
      if (raw.endsWith("\r\n0\r\n\r\n")) break;
    }
    const body = raw.slice(raw.indexOf("\r\n\r\n") + 4);
    expect(body).toBe(`5\r\nstart\r\n800\r\n${"a".repeat(1024)}${"b".repeat(1024)}\r\n400\r\n${"c".repeat(1024)}\r\n0\r\n\r\n`);
  });

  it("over HTTP/2, sends the blocks in order", async () => {
    const request = await http2Request((res) => {
      res.writeHead(200);
      writeResponseBlocks(res, [block("a"), block("b", 10), block("c")]);
      res.end();
    });
    const chunks: Buffer[] = [];
    for await (const data of request) chunks.push(data as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe("a".repeat(1024) + "b".repeat(10) + "c".repeat(1024));
  });

  /**
   * Writes batches of 64 × 1 KiB until one says wait while bytes are left in
   * Node's buffer (the client is really behind, not just a large batch);
   * returns how many it wrote and the response's next 'drain', listened for at once.
   */
  function fillUntilBehind(res: HttpResponse): { batches: number; drained: Promise<unknown> } {
    const batch = Array.from({ length: 64 }, (_, i) => block(String.fromCharCode(97 + (i % 26))));
    const buffered = "stream" in res ? res.stream : res.socket!;
    for (let batches = 1; batches <= 2000; batches++) {
      if (!writeResponseBlocks(res, batch) && buffered.writableLength > 0) return { batches, drained: once(res, "drain") };
    }
    throw new Error("never behind");
  }

  it("over HTTP/1.1, returns false when the client stops reading, and the response drains when it reads again", async () => {
    let resolveFilled: (filled: ReturnType<typeof fillUntilBehind>) => void = () => {};
    const filled = new Promise<ReturnType<typeof fillUntilBehind>>((resolve) => (resolveFilled = resolve));
    const port = await http1((res) => {
      res.writeHead(200);
      res.write("start");
      setImmediate(() => resolveFilled(fillUntilBehind(res)));
    });
    const socket = net.connect(port, "127.0.0.1");
    cleanup.push(() => socket.destroy());
    socket.pause();
    socket.write("GET / HTTP/1.1\r\nHost: test\r\n\r\n");
    const { batches, drained } = await filled;
    expect(batches).toBeGreaterThan(1);
    socket.resume();
    await drained;
  });

  it("over HTTP/2, returns false when the client stops reading, and the response drains when it reads again", async () => {
    let resolveFilled: (filled: ReturnType<typeof fillUntilBehind>) => void = () => {};
    const filled = new Promise<ReturnType<typeof fillUntilBehind>>((resolve) => (resolveFilled = resolve));
    const request = await http2Request((res) => {
      res.writeHead(200);
      resolveFilled(fillUntilBehind(res));
    });
    request.pause();
    const { drained } = await filled;
    request.resume();
    await drained;
  });
});
