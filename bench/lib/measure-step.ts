import { setTimeout as sleep } from "node:timers/promises";
import type { LoadReply } from "../load/load-protocol.js";
import type { Topic } from "../targets/target.js";
import { createHistogram } from "./histogram.js";
import { markerPayload, nowMicros } from "./marker.js";
import type { TargetSession } from "./target-session.js";

/** How long steps run and wait: short for `--quick`. */
export interface StepTiming {
  readonly durationMs: number;
  /** Longest wait for the last deliveries after the last publish. */
  readonly maxDrainMs: number;
}

/** One open-loop step at a fixed publish rate. */
export interface StepResult {
  readonly publishRate: number;
  readonly published: number;
  readonly publishErrors: number;
  readonly expected: number;
  readonly delivered: number;
  /** Deliveries offered per second (publish rate times subscribers per message). */
  readonly offeredPerSecond: number;
  readonly deliveriesPerSecond: number;
  readonly deliveriesPerCpuSecond: number;
  readonly serverCpuSeconds: number;
  /** The load generator's CPU time in the step (subscribers' reading; the publisher runs in the orchestrator). */
  readonly loadCpuSeconds: number;
  readonly elapsedSeconds: number;
  readonly latencyMs: { readonly p50: number; readonly p99: number; readonly p999: number; readonly max: number };
  readonly eventLoopDelayP99Ms: number;
  readonly rssBytes: number;
  /** Connections that ended during the step (a slow consumer dropped, an error). */
  readonly connectionsEnded: number;
  /** Bytes the subscribers' sockets received in the step (framing included, as on the wire). */
  readonly bytesReceived: number;
}

/** What one step publishes, where, how fast and for how long. */
export interface StepPlan {
  /** Published round-robin: message i goes to topics[i % length]. */
  readonly topics: readonly Topic[];
  /** Subscribers of each topic in `topics` (same order): deliveries one publish makes. */
  readonly fanOut: readonly number[];
  readonly publishRate: number;
  readonly payloadBytes: number;
  /** Pads payloads with this text instead of `x` (`markerPayload`): compression is measured on text, not on one letter. */
  readonly filler?: string;
  readonly timing: StepTiming;
}

/**
 * Publishes open-loop: message i is due at start + i / rate and carries that
 * scheduled time, so a server (or publisher) that falls behind shows up as
 * latency instead of silently lowering the rate (no coordinated omission).
 */
export async function runStep(session: TargetSession, plan: StepPlan): Promise<StepResult> {
  await settle(session, plan.timing.maxDrainMs);
  await session.load.ask({ type: "reset" }, "reset-done");
  const before = await session.load.ask<Extract<LoadReply, { type: "report" }>>({ type: "report" }, "report");
  await session.resetProbe();
  const total = Math.max(1, Math.round((plan.publishRate * plan.timing.durationMs) / 1000));
  const intervalMicros = 1e6 / plan.publishRate;
  const start = nowMicros() + 2000;
  let expected = 0;
  let publishErrors = 0;
  const inFlight = new Set<Promise<void>>();
  let next = 0;
  // For BENCH_TRACE: how late each publish was issued, how long the server took to accept it, and the publisher's CPU.
  const lags: number[] = [];
  const roundTrips: number[] = [];
  const cpuAtStart = process.cpuUsage();
  while (next < total) {
    const now = nowMicros();
    while (next < total && start + next * intervalMicros <= now) {
      lags.push(now - (start + next * intervalMicros));
      const issuedAt = now;
      const index = next % plan.topics.length;
      const fanOut = plan.fanOut[index]!;
      expected += fanOut;
      const publish = session.publisher.publish(plan.topics[index]!, markerPayload(plan.payloadBytes, start + next * intervalMicros, plan.filler)).catch(() => {
        publishErrors++;
        expected -= fanOut;
      });
      inFlight.add(publish);
      void publish.finally(() => {
        inFlight.delete(publish);
        roundTrips.push(nowMicros() - issuedAt);
      });
      next++;
    }
    if (next < total) await sleep(Math.max(0, Math.min(1, (start + next * intervalMicros - nowMicros()) / 1000)));
  }
  await Promise.all(inFlight);
  const publishedAt = nowMicros();
  if (process.env.BENCH_TRACE) {
    // A publisher that keeps its schedule (small issue lag) while round trips grow means the server is behind, not the publisher.
    const cpu = process.cpuUsage(cpuAtStart);
    const ms = (values: number[], q: number) => ((values.sort((a, b) => a - b)[Math.floor((values.length - 1) * q)] ?? 0) / 1000).toFixed(1);
    process.stderr.write(
      `publisher: ${total} publishes at ${plan.publishRate.toFixed(0)}/s, issued late by p50 ${ms(lags, 0.5)} p99 ${ms(lags, 0.99)} ms, ` +
        `round trip p50 ${ms(roundTrips, 0.5)} p99 ${ms(roundTrips, 0.99)} ms, publisher CPU ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms in ${((publishedAt - start) / 1000).toFixed(0)} ms\n`,
    );
  }
  let report = await session.load.ask<Extract<LoadReply, { type: "report" }>>({ type: "report" }, "report");
  let lastProgress = nowMicros();
  let lastDelivered = report.delivered;
  while (report.delivered < expected && nowMicros() - publishedAt < plan.timing.maxDrainMs * 1000 && nowMicros() - lastProgress < 1_000_000) {
    await sleep(50);
    report = await session.load.ask<Extract<LoadReply, { type: "report" }>>({ type: "report" }, "report");
    if (report.delivered > lastDelivered) {
      lastDelivered = report.delivered;
      lastProgress = nowMicros();
    }
  }
  const stats = await session.probe();
  const latency = createHistogram(report.latency);
  const elapsedSeconds = Math.max(plan.timing.durationMs / 1000, ((report.lastAt || publishedAt) - start) / 1e6);
  const deliveriesPerSecond = report.delivered / elapsedSeconds;
  return {
    publishRate: plan.publishRate,
    published: total - publishErrors,
    publishErrors,
    expected,
    delivered: report.delivered,
    offeredPerSecond: expected / (plan.timing.durationMs / 1000),
    deliveriesPerSecond,
    deliveriesPerCpuSecond: stats.cpuSeconds > 0 ? report.delivered / stats.cpuSeconds : 0,
    serverCpuSeconds: stats.cpuSeconds,
    loadCpuSeconds: report.cpuSeconds,
    elapsedSeconds,
    latencyMs: { p50: latency.percentile(50) / 1000, p99: latency.percentile(99) / 1000, p999: latency.percentile(99.9) / 1000, max: latency.max / 1000 },
    eventLoopDelayP99Ms: stats.eventLoopDelayP99Ms,
    rssBytes: stats.rssBytes,
    connectionsEnded: report.ended - before.ended,
    bytesReceived: report.bytes,
  };
}

/** Whether a step shows the server (or the bench) past its ceiling. */
export function saturated(step: StepResult): boolean {
  return (
    step.delivered < 0.97 * step.expected || step.deliveriesPerSecond < 0.9 * step.offeredPerSecond || step.latencyMs.p99 > 1000 || step.connectionsEnded > 0
  );
}

/**
 * Waits until no delivery has arrived for 200 ms (at most `maxMs`): a saturated
 * step leaves a backlog in the server's buffers, and the next step must not
 * start while it still drains.
 */
async function settle(session: TargetSession, maxMs: number): Promise<void> {
  const deadline = Date.now() + maxMs;
  let previous = -1;
  while (Date.now() < deadline) {
    const report = await session.load.ask<Extract<LoadReply, { type: "report" }>>({ type: "report" }, "report");
    if (report.delivered === previous) return;
    previous = report.delivered;
    await sleep(200);
  }
}
