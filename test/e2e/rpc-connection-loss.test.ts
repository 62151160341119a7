import { Code, ConnectError, type Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatService } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { startInstances, type Instance, type Instances } from "../redis/instances.js";
import { bearer, clientFor, transportFor } from "../helpers/clients.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { startTcpProxy, type TcpProxy } from "../helpers/tcp-proxy.js";

/**
 * What a generated Connect or gRPC client (connect-node, HTTP/2) sees when the
 * connection under its server streams goes away: many streams share one
 * HTTP/2 session per transport, so one lost connection is every stream's
 * business. docs/protocol.md ("Lost connections") states what this shows.
 */

/** One stream's fate. */
interface OpenStream {
  /** Resolves on the stream's first message. */
  readonly live: Promise<void>;
  /** Resolves with the error that ended the stream; a stream that completes rejects. */
  readonly ended: Promise<ConnectError>;
  /** Whether it has ended. */
  settled(): boolean;
}

/** Opens a room stream from just after `cursor` through `transport`, reading as fast as it can. */
function openStream(transport: Transport, token: string, room: string, cursor: string): OpenStream {
  let onLive!: () => void;
  const live = new Promise<void>((resolve) => (onLive = resolve));
  const state = { settled: false };
  const ended = (async () => {
    try {
      for await (const _ of clientFor(ChatService, transport).subscribe({ room, cursor }, bearer(token))) onLive();
    } catch (error) {
      return ConnectError.from(error);
    } finally {
      state.settled = true;
    }
    throw new Error("a room stream completed without an error");
  })();
  return { live, ended, settled: () => state.settled };
}

/** Publishes to `room` at `baseUrl` on a connection of its own; resolves with the message's cursor. */
async function publish(baseUrl: string, token: string, room: string, text: string): Promise<string> {
  const sender = clientFor(ChatService, transportFor(baseUrl, "connect", "1.1"));
  return (await sender.send({ room, text }, bearer(token))).message!.cursor;
}

/** 1 KiB of text. */
const kibibyte = "x".repeat(1024);

describe("gRPC and Connect h2c streams of an instance that exits", () => {
  let instances: Instances;
  beforeAll(async () => {
    // One process each, memory broker: what is under test is the connection, not Redis.
    instances = await startInstances(2, { args: ["--broker", "memory", "--streams-per-user", "10000"] });
  }, 60_000);
  afterAll(() => instances?.close());

  /** 300 streams on two sessions (one gRPC, one Connect h2c transport), each live; resolves with each stream's error once `stop` ran. */
  async function streamsUntil(instance: Instance, stop: () => Promise<void>): Promise<string[]> {
    const token = await instances.token("alice");
    const room = "exit";
    const start = await publish(instance.url, token, room, "start");
    const transports = [transportFor(instance.url, "grpc", "2"), transportFor(instance.url, "connect", "2")];
    const streams = Array.from({ length: 300 }, (_, i) => openStream(transports[i % 2]!, token, room, start));
    await publish(instance.url, token, room, kibibyte);
    await Promise.all(streams.map((stream) => stream.live));
    await stop();
    const errors = await Promise.all(streams.map((stream) => stream.ended));
    return [...new Set(errors.map((error) => `${Code[error.code]}: ${error.rawMessage}`))];
  }

  it("SIGTERM: every stream ends with unavailable, the server's word to reconnect elsewhere", async () => {
    const [a] = instances.list as [Instance, Instance];
    expect(await streamsUntil(a, () => a.terminate())).toEqual(["Unavailable: server is shutting down; reconnect"]);
  }, 60_000);

  it("SIGKILL: every stream ends with an error, which connect-node calls canceled", async () => {
    const [, b] = instances.list as [Instance, Instance];
    // Node closes every stream of a session whose socket closed with RST_STREAM
    // CANCEL, and connect-node maps that to `canceled`: the same code as a call
    // the client cancelled itself. A resuming client must reconnect on it.
    expect(await streamsUntil(b, () => b.kill())).toEqual(["Canceled: http/2 stream closed with error code CANCEL (0x8)"]);
  }, 60_000);
});

describe("gRPC streams over a connection gone silent", () => {
  let server: TestServer;
  let token: string;
  let proxy: TcpProxy;
  beforeAll(async () => {
    server = await startTestServer();
    token = await server.token("alice");
    proxy = await startTcpProxy(server.port);
  });
  afterAll(async () => {
    await proxy?.close();
    await server?.close();
  });

  it("end only when the transport pings (pingIntervalMs): unavailable", async () => {
    const room = "connection-silent";
    const start = await publish(server.url, token, room, "start");
    const unpinged = openStream(transportFor(proxy.url, "grpc", "2"), token, room, start);
    const pinged = openStream(createGrpcTransport({ baseUrl: proxy.url, pingIntervalMs: 200, pingTimeoutMs: 200 }), token, room, start);
    await publish(server.url, token, room, "one");
    await Promise.all([unpinged.live, pinged.live]);

    // Open but silent, as a server host that vanished or a network that
    // blackholes packets: no FIN, no RST, nothing to read.
    proxy.freeze();
    await publish(server.url, token, room, "two");
    const error = await pinged.ended;
    expect(`${Code[error.code]}: ${error.rawMessage}`).toBe("Unavailable: PING timed out");
    // Same connection state for the same time, but nothing tells the transport
    // without pings: its stream waits for the next message forever.
    expect(unpinged.settled()).toBe(false);
  });
});
