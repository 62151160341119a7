/**
 * The load generator: a process of its own (pinned to the core the servers do
 * not use) that opens subscribers' connections for one target and counts the
 * marked payloads they receive. The orchestrator drives it over IPC
 * (load-protocol.ts).
 */
import type { Socket } from "node:net";
import { createHmacTokens } from "../../src/auth/tokens.js";
import { createHistogram } from "../lib/histogram.js";
import { createMarkerScanner, nowMicros, type DeliverySink } from "../lib/marker.js";
import { targetNamed } from "../targets/all-targets.js";
import { runLlmLoad } from "./llm-load.js";
import type { LoadReply, LoadRequest } from "./load-protocol.js";

interface Connection {
  expected: number;
  round: number;
}

const sink: DeliverySink = { latency: createHistogram(), delivered: 0, lastAt: 0 };
let sockets: Socket[] = [];
let connections: Connection[] = [];
let ended = 0;
let firstEnd: string | undefined;
let closing = false;
let cpuAtReset = process.cpuUsage();
let bytes = 0;

function reply(message: LoadReply): void {
  process.send?.(message);
}

async function open(request: Extract<LoadRequest, { type: "open" }>): Promise<void> {
  closing = false;
  ended = 0;
  firstEnd = undefined;
  const target = targetNamed(request.target);
  const tokens = createHmacTokens(request.secret);
  const batch: Promise<void>[] = [];
  for (const [index, plan] of request.subscribers.entries()) {
    const spec = { ...plan, token: await tokens.mint({ userId: plan.userId, ttlSeconds: 24 * 3600 }) };
    const expectations = target.topicsPerConnection(spec);
    let made = 0;
    const opened = target.connect(spec, {
      port: request.port,
      localAddress: request.sourceAddresses[index % request.sourceAddresses.length]!,
      now: nowMicros,
      newScanner() {
        const connection: Connection = { expected: expectations[made++] ?? 1, round: 0 };
        connections.push(connection);
        const scanner = createMarkerScanner(sink);
        return {
          scan(chunk, now) {
            const found = scanner.scan(chunk, now);
            connection.round += found;
            return found;
          },
        };
      },
      onEnd(reason) {
        if (closing) return;
        ended++;
        firstEnd ??= reason;
      },
    });
    for (const socket of opened) {
      sockets.push(socket);
      socket.on("data", (chunk: Buffer) => (bytes += chunk.length));
      // A bounded number of handshakes in flight keeps the server's accept queue from overflowing.
      batch.push(
        new Promise<void>((resolve) => {
          socket.once("connect", () => resolve());
          socket.once("close", () => resolve());
        }),
      );
    }
    if (batch.length >= 64) await Promise.all(batch.splice(0));
  }
  await Promise.all(batch);
  reply({ type: "opened", connections: sockets.length, ended, firstEnd });
}

process.on("message", (request: LoadRequest) => {
  switch (request.type) {
    case "open":
      void open(request).catch((error: unknown) => {
        firstEnd ??= error instanceof Error ? error.message : String(error);
        reply({ type: "opened", connections: sockets.length, ended: ended + 1, firstEnd });
      });
      return;
    case "round-reset":
      for (const connection of connections) connection.round = 0;
      reply({ type: "round-reset-done" });
      return;
    case "round-status":
      reply({ type: "round-status", notReady: connections.filter((c) => c.round < c.expected).length, ended, firstEnd });
      return;
    case "reset":
      sink.latency.reset();
      sink.delivered = 0;
      sink.lastAt = 0;
      cpuAtReset = process.cpuUsage();
      bytes = 0;
      reply({ type: "reset-done" });
      return;
    case "report":
      {
        const cpu = process.cpuUsage(cpuAtReset);
        reply({
          type: "report",
          delivered: sink.delivered,
          lastAt: sink.lastAt,
          latency: sink.latency.toData(),
          ended,
          firstEnd,
          cpuSeconds: (cpu.user + cpu.system) / 1e6,
          bytes,
        });
      }
      return;
    case "close":
      closing = true;
      for (const socket of sockets) socket.destroy();
      sockets = [];
      connections = [];
      reply({ type: "closed" });
      return;
    case "llm":
      void runLlmLoad(request).then(reply);
      return;
  }
});

// Nothing outlives the orchestrator.
process.on("disconnect", () => process.exit(0));
