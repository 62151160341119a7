import http from "node:http";
import zlib from "node:zlib";
import { createHmacTokens } from "../../src/auth/tokens.js";
import type { BenchOptions } from "../lib/bench-options.js";
import { createRivuletPublisher } from "../lib/publisher.js";
import type { Row } from "../lib/results.js";
import { benchSecret, rivuletArgs } from "../lib/rivulet-server.js";
import { serverCore, spawnBenchProcess } from "../lib/spawn-process.js";
import type { ProbeStats } from "../lib/probe-protocol.js";

/** One subscriber: its socket's byte count and the messages it has decoded. */
interface Subscriber {
  readonly request: http.ClientRequest;
  bytesRead(): number;
  messages: number;
}

/** Words for chat-like texts: JSON events that repeat field names and some values, as real ones do. */
const words = "the a to and of in is it you that on for are with as this was at be have from or one had by not but what all were when we there can".split(" ");

/**
 * Scenario (f): SSE with `--sse-compression off` and `on`, both asked with
 * `Accept-Encoding: gzip, deflate` (as undici's fetch sends): bytes on the
 * wire and server CPU per delivered chat message, and RSS per idle
 * connection. The subscribers run in this process through `node:http` (which
 * undoes the chunked framing) and inflate incrementally; the socket's
 * `bytesRead` is what the wire carried. Server CPU includes each message's
 * publish (one Connect call), the same in both rows.
 */
export async function runSseCompression(options: BenchOptions, log: (line: string) => void): Promise<Row[]> {
  const subscribers = options.quick ? 100 : 1000;
  const messages = options.quick ? 100 : 300;
  const rows: Row[] = [];
  for (const mode of ["off", "on"] as const) {
    const server = spawnBenchProcess({ script: "src/main.ts", args: rivuletArgs(["--sse-compression", mode]), core: serverCore, probe: true });
    try {
      const { port } = await server.ports;
      const probe = (collectGarbage: boolean) => server.ask<ProbeStats>({ type: "probe-stats", collectGarbage }, "probe-stats");
      const publisher = await createRivuletPublisher(port, benchSecret);
      // Any user may read a room.
      const token = await createHmacTokens(benchSecret).mint({ userId: "bench-reader", ttlSeconds: 3600 });
      const before = await probe(true);
      const opened: Subscriber[] = [];
      for (let i = 0; i < subscribers; i++) opened.push(subscribe(port, token));
      let sent = 0;
      const publish = async () => {
        sent++;
        const text = `${sent} ${Array.from({ length: 12 }, () => words[Math.floor(Math.random() * words.length)]).join(" ")}`;
        await publisher.publish({ kind: "room", name: "compression" }, text);
      };
      // Warm-up: publish until one message reached every subscriber (each is subscribed; a subscription is live-only).
      for (let round = 0; !opened.every((s) => s.messages >= 1); round++) {
        if (round === 60) throw new Error(`sse-compression: subscribers did not all subscribe (${progress(opened)})`);
        await publish();
        await until(
          () => opened.every((s) => s.messages >= 1),
          () => progress(opened),
          1000,
        ).catch(() => undefined);
      }
      const idle = await probe(true);
      await server.ask({ type: "probe-reset" }, "probe-reset-done");
      const bytesBefore = opened.reduce((sum, s) => sum + s.bytesRead(), 0);
      const counted = opened.map((s) => s.messages);
      for (let i = 0; i < messages; i++) await publish();
      await until(
        () => opened.every((s, i) => s.messages >= counted[i]! + messages),
        () => progress(opened),
        120_000,
      );
      const stats = await probe(false);
      const deliveries = subscribers * messages;
      const wireBytes = opened.reduce((sum, s) => sum + s.bytesRead(), 0) - bytesBefore;
      for (const s of opened) s.request.destroy();
      log(
        `sse-compression ${mode}: ${(wireBytes / deliveries).toFixed(1)} B and ${((stats.cpuSeconds * 1e6) / deliveries).toFixed(1)} µs server CPU per delivery`,
      );
      rows.push({
        scenario: "sse-compression",
        case: `${subscribers} subscribers × ${messages} chat messages`,
        target: mode === "on" ? "rivulet-sse-gzip" : "rivulet-sse",
        label: mode === "on" ? "Rivulet SSE, --sse-compression on" : "Rivulet SSE, --sse-compression off",
        role: "rivulet",
        family: "sse",
        compression: {
          deliveries,
          wireBytesPerDelivery: wireBytes / deliveries,
          serverCpuMicrosPerDelivery: (stats.cpuSeconds * 1e6) / deliveries,
          rssBytesPerConnection: (idle.rssBytes - before.rssBytes) / subscribers,
        },
      });
    } finally {
      await server.stop();
    }
  }
  return rows;
}

/** The fewest and most messages any subscriber has decoded: what a stalled run shows. */
function progress(opened: readonly Subscriber[]): string {
  const counts = opened.map((s) => s.messages);
  return `messages per subscriber from ${Math.min(...counts)} to ${Math.max(...counts)}`;
}

function subscribe(port: number, token: string): Subscriber {
  const path = `/sse/rivulet.chat.v1.ChatService/Subscribe?message=${encodeURIComponent('{"room":"compression"}')}`;
  const request = http.get({
    host: "127.0.0.1",
    port,
    path,
    agent: false,
    headers: { accept: "text/event-stream", "accept-encoding": "gzip, deflate", authorization: `Bearer ${token}` },
  });
  const subscriber: Subscriber = { request, bytesRead: () => request.socket?.bytesRead ?? 0, messages: 0 };
  request.on("response", (response) => {
    const body = response.headers["content-encoding"] === "gzip" ? response.pipe(zlib.createGunzip({ flush: zlib.constants.Z_SYNC_FLUSH })) : response;
    let tail = "";
    body.setEncoding("utf8");
    body.on("data", (text: string) => {
      // One `data:` line per event (after `retry:`, never first); a chunk may split the
      // pattern, so its length less one carries over, too short to hold a whole one.
      const joined = tail + text;
      subscriber.messages += joined.split("\ndata: ").length - 1;
      tail = joined.slice(-6);
    });
  });
  request.on("error", () => undefined);
  return subscriber;
}

/** Polls a condition on the event loop (the sockets' data events drive it), for at most `timeoutMs`. */
async function until(condition: () => boolean, describe: () => string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`sse-compression: not every subscriber received every message (${describe()})`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
