/**
 * Preloaded (`node --import`) into every server process on the bench, Rivulet's
 * and the baselines' alike, so all are measured the same way without changing
 * their code: it answers the bench's IPC requests with the process's CPU time,
 * resident memory and event-loop delay.
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import type { ProbeReply, ProbeRequest } from "./probe-protocol.js";

const delay = monitorEventLoopDelay({ resolution: 10 });
delay.enable();
let cpuAtReset = process.cpuUsage();
let timeAtReset = process.hrtime.bigint();

function reply(message: ProbeReply): void {
  process.send?.(message);
}

process.on("message", (message: ProbeRequest) => {
  switch (message.type) {
    case "probe-reset":
      delay.reset();
      cpuAtReset = process.cpuUsage();
      timeAtReset = process.hrtime.bigint();
      reply({ type: "probe-reset-done" });
      return;
    case "probe-stats": {
      if (message.collectGarbage) {
        // --expose-gc is on the command line: two passes also run finalizers' frees.
        const gc = (globalThis as { gc?: () => void }).gc;
        gc?.();
        gc?.();
      }
      const cpu = process.cpuUsage(cpuAtReset);
      const memory = process.memoryUsage();
      reply({
        type: "probe-stats",
        cpuSeconds: (cpu.user + cpu.system) / 1e6,
        wallSeconds: Number(process.hrtime.bigint() - timeAtReset) / 1e9,
        rssBytes: memory.rss,
        heapUsedBytes: memory.heapUsed,
        // The histogram's values are nanoseconds; NaN when it saw no sample.
        eventLoopDelayP99Ms: Number.isFinite(delay.percentile(99)) ? delay.percentile(99) / 1e6 : 0,
      });
      return;
    }
  }
});
// The bench stops servers with SIGTERM: exit at once (no drain to wait for),
// through process.exit so that --cpu-prof writes its profile.
process.once("SIGTERM", () => process.exit(0));
// The IPC channel must not keep a server alive that would otherwise exit (its start failed).
process.channel?.unref();
