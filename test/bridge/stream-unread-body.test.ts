// A server-streaming request refused before its body was read to the end (over
// --max-message-bytes) gets its Connect end-stream error, and the connection
// is left as connect-node leaves it for unary calls: on HTTP/1.1 a rest of up
// to 256 KiB is read and dropped and the connection serves the next request;
// past that the answer says `connection: close`; on HTTP/2 only the stream
// ends, and the session serves the next call.
import http from "node:http";
import http2 from "node:http2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../helpers/server.js";

const refusal = `{"error":{"code":"resource_exhausted","message":"message size is larger than configured readMaxBytes 1024"}}`;
const path = "/rivulet.chat.v1.ChatService/Subscribe";

/** The end-stream message's JSON of a Connect streaming response body (one envelope, flags 0b10). */
function endStream(body: Buffer): string {
  expect(body[0]).toBe(0b10);
  return body.subarray(5, 5 + body.readUInt32BE(1)).toString("utf8");
}

describe("a streaming request refused before its body was read", () => {
  let server: TestServer;
  let token: string;

  beforeAll(async () => {
    server = await startTestServer({ config: { maxMessageBytes: 1024 } });
    token = await server.token("alice");
  });
  afterAll(() => server?.close());

  /** POSTs `size` bytes to Subscribe over HTTP/1.1 on `agent`; resolves with the answer and whether the socket was reused. */
  function post(agent: http.Agent, size: number): Promise<{ status: number; connection: string | undefined; body: Buffer; reused: boolean }> {
    return new Promise((resolve, reject) => {
      const req = http.request(`${server.url}${path}`, {
        agent,
        method: "POST",
        headers: { "content-type": "application/connect+proto", authorization: `Bearer ${token}`, "content-length": size },
      });
      req.on("response", (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, connection: res.headers.connection, body: Buffer.concat(chunks), reused: req.reusedSocket }),
        );
      });
      req.on("error", reject);
      req.end(Buffer.alloc(size, 1));
    });
  }

  it("on HTTP/1.1, drops a rest of up to 256 KiB and keeps the connection for the next request", async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const first = await post(agent, 100 * 1024);
    expect({ status: first.status, connection: first.connection, end: endStream(first.body) }).toEqual({ status: 200, connection: "keep-alive", end: refusal });
    const second = await post(agent, 2048);
    expect({ end: endStream(second.body), reused: second.reused }).toEqual({ end: refusal, reused: true });
    agent.destroy();
  });

  it("on HTTP/1.1, closes the connection after a larger rest, having answered", async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const answer = await post(agent, 400 * 1024);
    expect({ status: answer.status, connection: answer.connection, end: endStream(answer.body) }).toEqual({ status: 200, connection: "close", end: refusal });
    agent.destroy();
  });

  it("on HTTP/2, ends the stream only: the session serves the next call", async () => {
    const session = http2.connect(server.url);
    const call = (size: number) =>
      new Promise<Buffer>((resolve, reject) => {
        const stream = session.request({
          ":method": "POST",
          ":path": path,
          "content-type": "application/connect+proto",
          authorization: `Bearer ${token}`,
        });
        const chunks: Buffer[] = [];
        stream.on("data", (chunk: Buffer) => chunks.push(chunk));
        stream.on("end", () => resolve(Buffer.concat(chunks)));
        stream.on("error", reject);
        stream.end(Buffer.alloc(size, 1));
      });
    expect(endStream(await call(400 * 1024))).toBe(refusal);
    expect(endStream(await call(2048))).toBe(refusal);
    session.close();
  });
});
