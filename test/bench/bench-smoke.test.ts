import { describe, expect, it } from "vitest";
import { defaultOptions } from "../../bench/lib/bench-options.js";
import { renderMarkdown } from "../../bench/lib/report.js";
import { runBench } from "../../bench/run.js";
import { bareWebSocket } from "../../bench/targets/bare-websocket.js";
import { rivuletConnect } from "../../bench/targets/rivulet-connect.js";
import { trpcSse, trpcWebSocket } from "../../bench/targets/trpc.js";

// The harness end to end at its smallest: real server processes (Rivulet's
// src/main.ts, the bare ws baseline and the tRPC peer over both of its links,
// which also checks that the raw readers still speak tRPC's wire format), a
// load-generator process, a tiny broadcast. It checks that numbers come out, never how big they are: speed
// is measured by `npm run bench`, not asserted in `npm test`.
describe("npm run bench, smallest broadcast", () => {
  it("measures Rivulet, a baseline and the tRPC peers and renders their rows", async () => {
    const lines: string[] = [];
    const { results, file } = await runBench(
      {
        ...defaultOptions(true),
        scenarios: ["broadcast"],
        targets: [rivuletConnect, bareWebSocket, trpcWebSocket, trpcSse],
        broadcastSubscribers: [10],
        payloadBytes: [64],
        fixedDeliveriesPerSecond: 500,
        rampSteps: 2,
        timing: { durationMs: 300, maxDrainMs: 2000 },
        resultsDirectory: undefined,
      },
      (line) => lines.push(line),
    );
    expect(file).toBeUndefined();
    expect(results.rows.map((row) => [row.scenario, row.target, row.skipped])).toEqual([
      ["broadcast", "rivulet-connect", undefined],
      ["broadcast", "bare-ws", undefined],
      ["broadcast", "trpc-ws", undefined],
      ["broadcast", "trpc-sse", undefined],
    ]);
    for (const row of results.rows) {
      expect(row.fixed?.delivered).toBeGreaterThan(0);
      expect(row.ramp?.length).toBeGreaterThanOrEqual(1);
      expect(row.ceiling?.deliveriesPerSecond).toBeGreaterThan(0);
      expect(row.ceiling?.serverCpuSeconds).toBeGreaterThan(0);
      expect(row.half?.latencyMs.p99).toBeGreaterThan(0);
      expect(row.half?.rssBytes).toBeGreaterThan(0);
    }
    const markdown = renderMarkdown(results);
    expect(markdown).toContain("| 10 subscribers, 64 B | Rivulet Connect (h2c) |");
    expect(markdown).toContain("| 10 subscribers, 64 B | bare ws send loop |");
    expect(markdown).toContain("| 10 subscribers, 64 B | tRPC 11 WebSocket (wsLink) |");
    expect(markdown).toContain("| 10 subscribers, 64 B | tRPC 11 SSE (httpSubscriptionLink) |");
    expect(lines).toEqual([
      "broadcast · 10 subscribers, 64 B · Rivulet Connect (h2c)",
      "broadcast · 10 subscribers, 64 B · bare ws send loop",
      "broadcast · 10 subscribers, 64 B · tRPC 11 WebSocket (wsLink)",
      "broadcast · 10 subscribers, 64 B · tRPC 11 SSE (httpSubscriptionLink)",
    ]);
  }, 90_000);
});
