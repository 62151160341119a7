import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatService } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { redisAvailable } from "../broker/test-redis.js";
import { bearer, clientFor, transportFor } from "../helpers/clients.js";
import { connectRoomSocket, type RoomSocket } from "../http/room-socket.js";
import { startInstances, type Instance, type Instances } from "./instances.js";

/**
 * `--workers 2 --max-connections 3`: node:cluster's primary accepts every
 * connection and hands it to a worker. A full worker must take it and close
 * it (not answer "not accepted", which has the primary pass it on, round and
 * round while both are full, holding it: the stall the connections bench
 * found at the descriptor limit), so the service refuses while full and
 * accepts again once connections close.
 */
describe.runIf(redisAvailable())("--workers 2 --max-connections 3", () => {
  let instances: Instances;
  let host: Instance;
  beforeAll(async () => {
    // Resolves once the primary logged "listening on", which it does once both workers listen.
    instances = await startInstances(1, { args: ["--workers", "2", "--max-connections", "3"] });
    host = instances.list[0]!;
  }, 60_000);
  afterAll(() => instances?.close());

  it("refuses connections once a worker is full, and accepts them again once some closed: the service does not stall", async () => {
    const room = "limits";
    const sockets: RoomSocket[] = [];
    let refused: Awaited<ReturnType<typeof connectRoomSocket>> | undefined;
    // The primary hands connections to the workers in turn: the first refusal comes once one worker holds 3.
    while (refused === undefined) {
      const connection = await connectRoomSocket(host.url, await instances.token(`u${sockets.length}`));
      if (!connection.opened) refused = connection;
      else sockets.push(connection.socket);
      if (sockets.length > 6) throw new Error("a 7th connection was accepted by 2 workers of at most 3 each");
    }
    expect(sockets.length).toBeGreaterThanOrEqual(3);
    expect(refused).toMatchObject({ opened: false, closeCode: 1006 });

    // The open ones keep working: a message sent on one reaches every one.
    for (const socket of sockets) socket.subscribe(room, 10);
    await sockets[0]!.send(room, "while full");
    await Promise.all(sockets.map((socket) => socket.received("while full")));

    // All but the first close; once their users left the room, their workers saw them close.
    const watcher = sockets[0]!;
    await Promise.all(sockets.slice(1).map((socket) => socket.close()));
    await Promise.all(sockets.slice(1).map((_, i) => watcher.untilLeft(room, `u${i + 1}`)));

    // The one refusal, counted by the worker that made it (every worker's series, from any worker's /metrics).
    const metrics = await (await fetch(`${host.url}/metrics`)).text();
    const refusals = [...metrics.matchAll(/^rivulet_connections_refused_total\{reason="max_connections",worker="\d+"\} (\d+)$/gm)];
    expect(refusals.reduce((sum, [, value]) => sum + Number(value), 0)).toBe(1);

    // New connections are accepted again: a unary publish over HTTP/1.1, and a WebSocket that receives it.
    const again = await connectRoomSocket(host.url, await instances.token("again"));
    if (!again.opened) throw new Error(`refused after connections closed: ${again.error} (${again.closeCode})`);
    again.socket.subscribe(room, 10);
    await again.socket.received("while full");
    const chat = clientFor(ChatService, transportFor(host.url, "connect", "1.1"));
    await chat.send({ room, text: "after" }, bearer(await instances.token("publisher")));
    await Promise.all([watcher.received("after"), again.socket.received("after")]);
    expect(again.socket.texts).toEqual(["while full", "after"]);
    expect(host.logs.filter((entry) => entry.level === 40 && entry.maxConnections === 3).map(({ msg, refused }) => ({ msg, refused }))).toEqual([
      { msg: "3 connections open: closing new ones as they arrive (--max-connections)", refused: 1 },
    ]);
    await Promise.all([watcher.close(), again.socket.close()]);
  });
});
