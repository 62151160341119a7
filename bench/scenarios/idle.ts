import type { BenchOptions } from "../lib/bench-options.js";
import type { Row } from "../lib/results.js";
import type { Topic } from "../targets/target.js";
import { runPerTarget } from "./run-per-target.js";

/**
 * Scenario (c): the server's resident memory per idle subscriber. RSS after a
 * full GC, before any connection and after N connections have each received
 * one message (proof that they are subscribed), divided by N.
 */
export function runIdle(options: BenchOptions, log: (line: string) => void): Promise<Row[]> {
  const count = options.idleConnections;
  const topic: Topic = { kind: "room", name: "idle" };
  return runPerTarget(
    "idle",
    options.targets,
    [`${count} idle subscribers`],
    async (session) => {
      const before = await session.probe(true);
      const connections = await session.open(Array.from({ length: count }, (_, i) => ({ userId: `idle-${i}`, topics: [topic] })));
      await session.warmUp([topic], 64);
      const after = await session.probe(true);
      await session.closeSubscribers();
      return {
        idle: {
          connections,
          rssBytesPerConnection: (after.rssBytes - before.rssBytes) / connections,
          heapBytesPerConnection: (after.heapUsedBytes - before.heapUsedBytes) / connections,
          rssBytes: after.rssBytes,
        },
      };
    },
    log,
    { cpuProfileDirectory: options.cpuProfileDirectory },
  );
}
