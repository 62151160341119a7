import { once } from "node:events";
import tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestCertificate } from "../helpers/tls.js";
import { metricValue, startTestServer, type TestServer } from "../helpers/server.js";
import { connectRoomSocket, type RoomSocket } from "./room-socket.js";

/** Connects as `userId` and expects the connection to open. */
async function open(server: TestServer, userId: string): Promise<RoomSocket> {
  const connection = await connectRoomSocket(server.url, await server.token(userId));
  if (!connection.opened) throw new Error(`${userId}'s connection was refused: ${connection.error} (${connection.closeCode})`);
  return connection.socket;
}

describe("--max-connections 5, one process", () => {
  let server: TestServer;
  const logs: Record<string, unknown>[] = [];
  beforeAll(async () => {
    server = await startTestServer({
      config: { maxConnections: 5, logLevel: "warn" },
      logDestination: { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) },
    });
  });
  afterAll(() => server?.close());

  it("closes a 6th connection as it arrives; the 5 keep working, and a slot freed is taken again", async () => {
    const room = "full";
    const sockets: RoomSocket[] = [];
    for (const user of ["u1", "u2", "u3", "u4", "u5"]) sockets.push(await open(server, user));
    // Every call rides the five connections: the test holds no other.
    await sockets[0]!.send(room, "start");
    for (const socket of sockets) socket.subscribe(room, 10);
    await Promise.all(sockets.map((socket) => socket.received("start")));

    // The 6th: the kernel completes its handshake, the server closes it at once, before the upgrade is read.
    const refused = await connectRoomSocket(server.url, await server.token("u6"));
    expect(refused).toMatchObject({ opened: false, closeCode: 1006 });
    expect(["socket hang up", "read ECONNRESET"]).toContain(refused.opened ? "" : refused.error);

    await sockets[1]!.send(room, "while full");
    await Promise.all(sockets.map((socket) => socket.received("while full")));
    for (const socket of sockets) expect(socket.texts).toEqual(["start", "while full"]);

    // u5 leaves: once the server saw its connection close (u5's presence ends with it), a new one is accepted.
    await sockets[4]!.close();
    await sockets[0]!.untilLeft(room, "u5");
    const again = await open(server, "u6");
    again.subscribe(room, 10);
    await again.received("while full");
    await sockets[0]!.send(room, "again");
    await again.received("again");
    expect(again.texts).toEqual(["start", "while full", "again"]);

    // One warning for the refusal (later ones within a minute are only counted), and the counter.
    expect(logs.filter((entry) => entry.level === 40).map(({ msg, maxConnections, refused }) => ({ msg, maxConnections, refused }))).toEqual([
      { msg: "5 connections open: closing new ones as they arrive (--max-connections)", maxConnections: 5, refused: 1 },
    ]);
    await again.close();
    await sockets[0]!.untilLeft(room, "u6");
    expect(await metricValue(server.url, 'rivulet_connections_refused_total{reason="max_connections"}')).toBe(1);
    await Promise.all(sockets.map((socket) => socket.close()));
  });
});

describe("--max-connections 1 with TLS", () => {
  it("closes a 2nd connection before its TLS handshake; the 1st is still served", async () => {
    const server = await startTestServer({ config: { maxConnections: 1, ...toTls(createTestCertificate()) } });
    const connect = () => tls.connect({ host: "127.0.0.1", port: server.port, rejectUnauthorized: false, ALPNProtocols: ["http/1.1"] });
    try {
      const first = connect();
      await once(first, "secureConnect");
      const second = connect();
      const outcome = await new Promise<string>((resolve) => {
        second.once("secureConnect", () => resolve("handshake completed"));
        second.once("error", (error: Error & { code?: string }) => resolve(error.code ?? error.message));
      });
      // No handshake: closed by the server as it arrived (an end before the ServerHello, or a reset).
      expect(["ECONNRESET", "Client network socket disconnected before secure TLS connection was established"]).toContain(outcome);
      first.end("GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
      let response = "";
      for await (const chunk of first) response += String(chunk);
      expect(response).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    } finally {
      await server.close();
    }
  });
});

function toTls({ certFile, keyFile }: { certFile: string; keyFile: string }) {
  return { tlsCert: certFile, tlsKey: keyFile };
}
