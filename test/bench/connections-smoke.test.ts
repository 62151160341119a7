import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { defaultOptions } from "../../bench/lib/bench-options.js";
import { renderMarkdown } from "../../bench/lib/report.js";
import { runBench } from "../../bench/run.js";
import { bareWebSocket } from "../../bench/targets/bare-websocket.js";
import { rivuletWebSocket } from "../../bench/targets/rivulet-websocket.js";

// The connections scenario end to end at its smallest: Rivulet's real server
// (dist/src/main.js) and the bare ws baseline, 50 idle WebSocket subscribers
// from two load processes over 16 loopback source addresses, a short idle
// window and one message to all of them. It checks that every connection is
// held and counted and that the message reaches each once, never how fast:
// `npx tsx bench/run.ts --scenarios connections` measures that.
describe("npm run bench -- --scenarios connections, smallest", () => {
  it("holds 50 idle subscribers on Rivulet and bare ws, reads their cost and reaches all of them", async () => {
    const lines: string[] = [];
    const { results } = await runBench(
      {
        ...defaultOptions(true),
        scenarios: ["connections"],
        targets: [rivuletWebSocket, bareWebSocket],
        connections: 50,
        connectionsIdleMs: 300,
        connectionsFanOutMessages: 1,
        resultsDirectory: undefined,
      },
      (line) => lines.push(line),
    );
    expect(results.rows.map((row) => [row.scenario, row.case, row.target, row.skipped])).toEqual([
      ["connections", "50 idle connections", "rivulet-ws", undefined],
      ["connections", "50 idle connections", "bare-ws", undefined],
    ]);
    for (const row of results.rows) {
      const c = row.connections!;
      expect([c.requested, c.attempted, c.connected, c.failed, c.timedOut, c.notSubscribed, c.endedWhileIdle]).toEqual([50, 50, 50, 0, 0, 0, 0]);
      expect([c.loadProcesses, c.sourceAddresses, c.serverProcesses, c.rssMethod, c.idleWindowSeconds]).toEqual([2, 16, 1, "after GC", 0.3]);
      expect([c.firstError, c.limit, c.released]).toEqual([undefined, undefined, 0]);
      // Rivulet listens with the kernel's cap (src/http/listen.ts), bare ws with Node's default.
      expect(c.listenBacklog).toBe(row.target === "rivulet-ws" ? readFileSync("/proc/sys/net/core/somaxconn", "utf8").trim() : "511");
      // Machine-wide (other processes' full queues count too): a count, whatever its size.
      expect(Number.isInteger(c.listenOverflows) && c.listenOverflows >= 0).toBe(true);
      expect(c.machineLimits).toMatch(/^file descriptors \d+ per process \(ulimit -Hn; servers and load processes alike\), listen backlog \d+ \(somaxconn\)/);
      expect(c.fanOut.map((m) => [m.delivered, m.expected])).toEqual([[50, 50]]);
      expect(c.fanOut[0]!.lastDeliveryMs).toBeGreaterThan(0);
      expect(c.connectSeconds).toBeGreaterThan(0);
      expect(c.rssBytes).toBeGreaterThan(0);
      expect(c.idleCpuSeconds).toBeGreaterThanOrEqual(0);
    }
    expect(results.rows.map((row) => row.connections?.heartbeat)).toEqual(["WebSocket ping every 15 s (default --keepalive)", "none"]);
    const markdown = renderMarkdown(results);
    expect(markdown).toContain("### Connections: idle subscribers of one room");
    expect(markdown).toContain("| 50 idle connections | Rivulet WebSocket | 50 of 50 | 2 × 16 |");
    expect(markdown).toContain("| 50 idle connections | bare ws send loop | 50 of 50 | 2 × 16 |");
    expect(markdown).not.toContain("Where it stopped");
    expect(lines.filter((line) => line.startsWith("connections ·"))).toEqual([
      "connections · 50 idle connections · Rivulet WebSocket",
      "connections · 50 idle connections · bare ws send loop",
    ]);
  }, 90_000);
});
