/**
 * A load process of the connections scenario (bench/scenarios/connections.ts):
 * opens its share of idle subscribers, a bounded number of handshakes at a
 * time, and counts the marked messages they receive. One process holds at most
 * what its file-descriptor limit allows (20,000 on the bench machine, which
 * cannot be raised without CAP_SYS_RESOURCE), so the scenario starts several.
 */
import type { Socket } from "node:net";
import { createHmacTokens } from "../../src/auth/tokens.js";
import { createHistogram } from "../lib/histogram.js";
import { createMarkerScanner, nowMicros, type DeliverySink } from "../lib/marker.js";
import { targetNamed } from "../targets/all-targets.js";
import type { ConnectionsReply, ConnectionsRequest } from "./connections-protocol.js";

interface Connection {
  readonly sockets: Socket[];
  answered: boolean;
  ended: boolean;
  received: number;
}

const sink: DeliverySink = { latency: createHistogram(), delivered: 0, lastAt: 0 };
let connections: Connection[] = [];
let closing = false;
let endedAfterOpen = 0;
let firstError: string | undefined;

function reply(message: ConnectionsReply): void {
  process.send?.(message);
}

async function open(request: Extract<ConnectionsRequest, { type: "open" }>): Promise<void> {
  closing = false;
  endedAfterOpen = 0;
  firstError = undefined;
  const target = targetNamed(request.target);
  // Tokens first, so that minting them is not counted in the time to connect.
  const mint = createHmacTokens(request.secret);
  const tokens: string[] = [];
  for (let i = 0; i < request.count; i++) tokens.push(await mint.mint({ userId: `${request.userPrefix}${i}`, ttlSeconds: 24 * 3600 }));
  const startedAt = nowMicros();
  const startedAtMs = Date.now();
  let lastAnsweredAt = 0;
  let attempted = 0;
  let failed = 0;
  let inFlight = 0;
  let next = 0;
  const pending = new Set<Connection>();
  let finish: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (finish = resolve));
  const settle = (connection: Connection) => {
    if (!pending.delete(connection)) return;
    progressAt = Date.now();
    inFlight--;
    launch();
  };
  const launch = () => {
    while (inFlight < request.inFlight && next < request.count && failed < request.failureLimit) start(next++);
    if (inFlight === 0) finish();
  };
  const start = (index: number) => {
    attempted++;
    inFlight++;
    const connection: Connection = { sockets: [], answered: false, ended: false, received: 0 };
    pending.add(connection);
    connections.push(connection);
    const scanner = createMarkerScanner(sink);
    const sockets = target.connect(
      { userId: `${request.userPrefix}${index}`, token: tokens[index]!, topics: [request.topic] },
      {
        port: request.port,
        localAddress: request.sourceAddresses[index % request.sourceAddresses.length]!,
        now: nowMicros,
        newScanner: () => ({
          scan(chunk, now) {
            const found = scanner.scan(chunk, now);
            connection.received += found;
            return found;
          },
        }),
        onEnd(reason) {
          if (closing || connection.ended) return;
          connection.ended = true;
          firstError ??= reason;
          if (connection.answered) endedAfterOpen++;
          else failed++;
          settle(connection);
        },
      },
    );
    connection.sockets.push(...sockets);
    // The first bytes back are the handshake's answer (101 or 200); a refusal has already ended the connection by then.
    sockets[0]?.once("data", () => {
      if (connection.ended) return;
      connection.answered = true;
      lastAnsweredAt = nowMicros();
      settle(connection);
    });
  };
  // Bounded two ways: no handshake settled for `stallMs` (the server stopped answering), or `deadlineMs` in all.
  let progressAt = Date.now();
  let gaveUp: string | undefined;
  const check = setInterval(() => {
    const now = Date.now();
    if (now - progressAt > request.stallMs) gaveUp = `no handshake answered for ${request.stallMs / 1000} s`;
    else if (now - startedAtMs > request.deadlineMs) gaveUp = `not all answered in ${request.deadlineMs / 1000} s`;
    else return;
    next = request.count;
    for (const connection of pending) {
      connection.ended = true;
      for (const socket of connection.sockets) socket.destroy();
    }
    finish();
  }, 500);
  launch();
  await done;
  clearInterval(check);
  const timedOut = pending.size;
  pending.clear();
  if (timedOut > 0) firstError ??= `${timedOut} handshakes unanswered: ${gaveUp ?? "gave up"}`;
  connections = connections.filter((c) => !c.ended);
  reply({ type: "opened", connected: connections.length, attempted, failed, timedOut, firstError, startedAt, lastAnsweredAt });
}

process.on("message", (request: ConnectionsRequest) => {
  switch (request.type) {
    case "open":
      void open(request).catch((error: unknown) => {
        firstError ??= error instanceof Error ? error.message : String(error);
        reply({ type: "opened", connected: 0, attempted: 0, failed: 1, timedOut: 0, firstError, startedAt: 0, lastAnsweredAt: 0 });
      });
      return;
    case "release":
      for (const connection of connections.splice(Math.max(0, connections.length - request.count))) {
        connection.ended = true;
        for (const socket of connection.sockets) socket.destroy();
      }
      reply({ type: "released", connected: connections.length });
      return;
    case "round-reset":
      for (const connection of connections) connection.received = 0;
      sink.latency.reset();
      sink.delivered = 0;
      sink.lastAt = 0;
      reply({ type: "round-reset-done" });
      return;
    case "round-status": {
      const open = connections.filter((c) => !c.ended);
      reply({
        type: "round-status",
        connected: open.length,
        received: open.filter((c) => c.received > 0).length,
        delivered: sink.delivered,
        lastAt: sink.lastAt,
        latency: sink.latency.toData(),
        endedAfterOpen,
        firstError,
      });
      return;
    }
    case "close":
      closing = true;
      for (const connection of connections) for (const socket of connection.sockets) socket.destroy();
      connections = [];
      reply({ type: "closed" });
      return;
  }
});

// Nothing outlives the orchestrator.
process.on("disconnect", () => process.exit(0));
