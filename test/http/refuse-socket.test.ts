import { once } from "node:events";
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { refuseSocket } from "../../src/http/refuse-socket.js";

/** `refuseSocket` on a real TCP connection: the client reads the literal bytes, then the end of the stream. */
describe("refuseSocket", () => {
  let server: net.Server | undefined;
  afterEach(async () => {
    await new Promise((resolve) => server?.close(resolve));
    server = undefined;
  });

  /** What a client reads from a server that refuses it with `refuse`, up to the connection's end. */
  async function answer(refuse: (socket: net.Socket) => void): Promise<string> {
    server = net.createServer(refuse);
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const client = net.connect((server.address() as net.AddressInfo).port, "127.0.0.1");
    let text = "";
    client.setEncoding("utf8").on("data", (chunk: string) => (text += chunk));
    await once(client, "end");
    client.destroy();
    return text;
  }

  it("answers a status with its reason phrase, Connection: close and an empty body", async () => {
    expect(await answer((socket) => refuseSocket(socket, 404))).toBe("HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    expect(await answer((socket) => refuseSocket(socket, 431))).toBe(
      "HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
    );
  });

  it("sends a reason as a plain-text body, its length counted in bytes", async () => {
    expect(await answer((socket) => refuseSocket(socket, 403, "origin not allowed — é"))).toBe(
      "HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 25\r\n\r\norigin not allowed — é",
    );
  });

  it("destroys a socket that can no longer be written to, writing nothing", async () => {
    let destroyed = false;
    const text = await answer((socket) => {
      socket.end();
      refuseSocket(socket, 400);
      destroyed = socket.destroyed;
    });
    expect(text).toBe("");
    expect(destroyed).toBe(true);
  });
});
