import type { BenchOptions } from "../lib/bench-options.js";
import { measureFanOut } from "../lib/fan-out.js";
import type { Row } from "../lib/results.js";
import type { Topic } from "../targets/target.js";
import { runPerTarget } from "./run-per-target.js";

/** Scenario (a): one topic, every subscriber on it, each payload size. */
export function runBroadcast(options: BenchOptions, log: (line: string) => void): Promise<Row[]> {
  const cases = options.broadcastSubscribers.flatMap((subscribers) => options.payloadBytes.map((payloadBytes) => ({ subscribers, payloadBytes })));
  const topic: Topic = { kind: "room", name: "broadcast" };
  return runPerTarget(
    "broadcast",
    options.targets,
    cases.map((c) => `${c.subscribers} subscribers, ${c.payloadBytes} B`),
    async (session, _name, index) => {
      const { subscribers, payloadBytes } = cases[index]!;
      const result = await measureFanOut(session, {
        subscribers: Array.from({ length: subscribers }, (_, i) => ({ userId: `sub-${i}`, topics: [topic] })),
        topics: [topic],
        fanOut: [subscribers],
        payloadBytes,
        fixedDeliveriesPerSecond: options.fixedDeliveriesPerSecond,
        rampFactor: options.rampFactor,
        rampSteps: options.rampSteps,
        timing: options.timing,
      });
      return result;
    },
    log,
    { cpuProfileDirectory: options.cpuProfileDirectory },
  );
}
