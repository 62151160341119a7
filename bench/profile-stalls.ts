/**
 * What a server did while its event loop stalled: reads a V8 CPU profile of a
 * bench server (`--cpu-prof`) and the trace its probe wrote (`BENCH_TRACE=<file>`,
 * bench/lib/probe.ts), both stamped with CLOCK_MONOTONIC in µs, and prints, per
 * measurement step, the loop stalls and GCs in it, the CPU profile's busy time
 * in the step, and for each stall of at least `--min-ms` the functions that ran
 * in it (inclusive and self time). Each step's line also sums the trace: its
 * longest loop stall and their total, and per GC kind the count, longest
 * pause and total (how the 1 KiB broadcast's major GCs were counted). See
 * bench/README.md, "Rooms latency".
 *
 *   npx tsx bench/profile-stalls.ts <trace file> <profile.cpuprofile> [--min-ms 100] [--top 25]
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly children?: readonly number[];
}
interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}
interface TraceLine {
  readonly pid: number;
  readonly at: number;
  readonly kind: string;
  readonly rest: string;
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { "min-ms": { type: "string", default: "100" }, top: { type: "string", default: "25" } },
});
const [traceFile, profileFile] = positionals;
if (!traceFile || !profileFile) {
  process.stderr.write("Usage: npx tsx bench/profile-stalls.ts <trace file> <profile.cpuprofile> [--min-ms 100] [--top 25]\n");
  process.exit(2);
}
const minMs = Number(values["min-ms"]);
const top = Number(values.top);

const profile = JSON.parse(readFileSync(profileFile, "utf8")) as CpuProfile;
const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
const parents = new Map<number, number>();
for (const node of profile.nodes) for (const child of node.children ?? []) parents.set(child, node.id);
const label = (node: ProfileNode) =>
  `${node.callFrame.functionName || "(anonymous)"} ${node.callFrame.url.replace(/^.*\/(node_modules|dist)\//, "$1/")}:${node.callFrame.lineNumber + 1}`;
// Sample i ran from times[i] for timeDeltas[i + 1] µs.
const times: number[] = [];
let clock = profile.startTime;
for (const delta of profile.timeDeltas) times.push((clock += delta));

/** Busy time in [from, to] µs, and per function its inclusive and self time, in ms. */
function window(from: number, to: number) {
  const inclusive = new Map<string, number>();
  const self = new Map<string, number>();
  let busy = 0;
  let gc = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const at = times[i]!;
    if (at < from || at > to) continue;
    const ms = (profile.timeDeltas[i + 1] ?? 0) / 1000;
    let node = nodes.get(profile.samples[i]!);
    if (!node || node.callFrame.functionName === "(idle)") continue;
    busy += ms;
    if (node.callFrame.functionName === "(garbage collector)") gc += ms;
    self.set(label(node), (self.get(label(node)) ?? 0) + ms);
    const seen = new Set<string>();
    for (; node; node = nodes.get(parents.get(node.id) ?? -1)) {
      const name = label(node);
      if (seen.has(name)) continue;
      seen.add(name);
      inclusive.set(name, (inclusive.get(name) ?? 0) + ms);
    }
  }
  return { busy, gc, inclusive, self };
}

const sorted = (map: Map<string, number>) => [...map].sort((a, b) => b[1] - a[1]);
const trace: TraceLine[] = readFileSync(traceFile, "utf8")
  .trim()
  .split("\n")
  .map((line) => {
    const [pid, at, kind, ...rest] = line.split(" ");
    return { pid: Number(pid), at: Number(at), kind: kind ?? "", rest: rest.join(" ") };
  })
  .filter((line) => line.at >= profile.startTime && line.at <= profile.endTime);

/** The trace's stalls and GCs in one step: the longest stall and their sum; per GC kind, how many, the longest pause and the sum (ms). */
interface StepTrace {
  stallMax: number;
  stallSum: number;
  gcs: Map<string, { count: number; max: number; sum: number }>;
}
const emptyStepTrace = (): StepTrace => ({ stallMax: 0, stallSum: 0, gcs: new Map() });
const describeStepTrace = (t: StepTrace) =>
  `stalls max ${t.stallMax.toFixed(0)} ms (sum ${t.stallSum.toFixed(0)}); GC ` +
  ([...t.gcs].map(([kind, g]) => `${kind} ${g.count}× (max ${g.max.toFixed(1)}, sum ${g.sum.toFixed(0)} ms)`).join(", ") || "none");

let step = 0;
let stepStart: number | undefined;
let stepTrace = emptyStepTrace();
for (const line of trace) {
  if (line.kind === "probe-reset") {
    stepStart = line.at;
    stepTrace = emptyStepTrace();
    step++;
    continue;
  }
  if (line.kind === "probe-stats" && stepStart !== undefined) {
    const { busy, gc } = window(stepStart, line.at);
    const wall = (line.at - stepStart) / 1000;
    process.stdout.write(
      `step ${step}: ${wall.toFixed(0)} ms, CPU profile busy ${busy.toFixed(0)} ms (${((100 * busy) / wall).toFixed(0)} %), GC ${gc.toFixed(0)} ms; trace: ${describeStepTrace(stepTrace)}\n`,
    );
    stepStart = undefined;
    continue;
  }
  if (line.kind === "gc") {
    const [kind = "?", pause = "0"] = line.rest.split(" ");
    const ms = Number.parseFloat(pause);
    const g = stepTrace.gcs.get(kind) ?? { count: 0, max: 0, sum: 0 };
    stepTrace.gcs.set(kind, { count: g.count + 1, max: Math.max(g.max, ms), sum: g.sum + ms });
    if (ms >= minMs / 4) process.stdout.write(`  gc ${line.rest} at ${line.at}\n`);
  }
  if (line.kind !== "stall") continue;
  const ms = Number.parseFloat(line.rest);
  stepTrace.stallMax = Math.max(stepTrace.stallMax, ms);
  stepTrace.stallSum += ms;
  if (ms < minMs) continue;
  // The stall began about when the late timer was due and ended ms later.
  const { busy, gc, inclusive, self } = window(line.at - 5000, line.at + ms * 1000 + 5000);
  process.stdout.write(`\n  stall ${ms} ms at ${line.at} (step ${stepStart === undefined ? "-" : step}): busy ${busy.toFixed(0)} ms, GC ${gc.toFixed(0)} ms\n`);
  for (const [name, value] of sorted(inclusive).slice(0, top)) process.stdout.write(`    incl ${value.toFixed(1).padStart(7)}  ${name}\n`);
  for (const [name, value] of sorted(self).slice(0, Math.ceil(top / 2))) process.stdout.write(`    self ${value.toFixed(1).padStart(7)}  ${name}\n`);
}
