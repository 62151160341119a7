/**
 * Preloaded (`node --import`) into every server process on the bench, Rivulet's
 * and the baselines' alike, so all are measured the same way without changing
 * their code: it answers the bench's IPC requests with the process's CPU time,
 * resident memory and event-loop delay.
 */
import { appendFileSync } from "node:fs";
import { join } from "node:path";
import { writeHeapSnapshot } from "node:v8";
import { constants, monitorEventLoopDelay, performance, PerformanceObserver } from "node:perf_hooks";
import type { ProbeReply, ProbeRequest } from "./probe-protocol.js";

const delay = monitorEventLoopDelay({ resolution: 10 });
delay.enable();
let cpuAtReset = process.cpuUsage();
let timeAtReset = process.hrtime.bigint();

/**
 * `BENCH_TRACE=<file>`: appends a line per step boundary (probe reset and
 * stats), per GC (kind and pause) and per event-loop stall over 20 ms, each
 * stamped with CLOCK_MONOTONIC in µs, the clock of V8's CPU profiles, so a
 * step's stalls can be found in the profile of the same run (bench/README.md).
 */
const traceFile = process.env.BENCH_TRACE;
const monotonicMicros = () => Number(process.hrtime.bigint() / 1000n);
function trace(line: string, at = monotonicMicros()): void {
  if (traceFile) appendFileSync(traceFile, `${process.pid} ${Math.round(at)} ${line}\n`);
}
if (traceFile) {
  const gcKinds: Record<number, string> = {
    [constants.NODE_PERFORMANCE_GC_MAJOR]: "major",
    [constants.NODE_PERFORMANCE_GC_MINOR]: "minor",
    [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: "incremental",
    [constants.NODE_PERFORMANCE_GC_WEAKCB]: "weakcb",
  };
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const kind = (entry as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind ?? -1;
      const startedAt = monotonicMicros() - (performance.now() - entry.startTime) * 1000;
      trace(`gc ${gcKinds[kind] ?? kind} ${entry.duration.toFixed(2)} ms`, startedAt);
    }
  }).observe({ entryTypes: ["gc"] });
  let expected = monotonicMicros() + 10_000;
  setInterval(() => {
    const now = monotonicMicros();
    if (now - expected > 20_000) trace(`stall ${((now - expected) / 1000).toFixed(1)} ms`, expected);
    expected = now + 10_000;
  }, 10).unref();
}

/**
 * `BENCH_HEAP_SNAPSHOTS=<directory>`: every probe that collects garbage first
 * (idle memory's before and after) also writes a heap snapshot there, named
 * `<pid>-<n>.heapsnapshot`; `bench/heap-census.ts` compares two of them.
 */
const heapSnapshotDirectory = process.env.BENCH_HEAP_SNAPSHOTS;
let heapSnapshots = 0;

function reply(message: ProbeReply): void {
  process.send?.(message);
}

process.on("message", (message: ProbeRequest) => {
  switch (message.type) {
    case "probe-reset":
      trace("probe-reset");
      delay.reset();
      cpuAtReset = process.cpuUsage();
      timeAtReset = process.hrtime.bigint();
      reply({ type: "probe-reset-done" });
      return;
    case "probe-stats": {
      trace("probe-stats");
      if (message.collectGarbage) {
        // --expose-gc is on the command line: two passes also run finalizers' frees.
        const gc = (globalThis as { gc?: () => void }).gc;
        gc?.();
        gc?.();
      }
      if (message.collectGarbage && heapSnapshotDirectory) {
        heapSnapshots += 1;
        const file = writeHeapSnapshot(join(heapSnapshotDirectory, `${process.pid}-${heapSnapshots}.heapsnapshot`));
        trace(`heap-snapshot ${file}`);
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
