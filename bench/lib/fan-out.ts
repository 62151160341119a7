import type { SubscriberPlan } from "../load/load-protocol.js";
import type { Topic } from "../targets/target.js";
import { runStep, saturated, type StepResult, type StepTiming } from "./measure-step.js";
import type { TargetSession } from "./target-session.js";

/** A fan-out case: who subscribes to what, what is published where, and how fast. */
export interface FanOutCase {
  readonly subscribers: readonly SubscriberPlan[];
  /** Topics published to, round-robin, and each one's subscriber count. */
  readonly topics: readonly Topic[];
  readonly fanOut: readonly number[];
  readonly payloadBytes: number;
  /** Deliveries per second of the fixed-rate step, the same for every target. */
  readonly fixedDeliveriesPerSecond: number;
  readonly rampFactor: number;
  readonly rampSteps: number;
  readonly timing: StepTiming;
}

/** What one target did in a fan-out case. */
export interface FanOutResult {
  readonly fixed: StepResult;
  readonly ramp: StepResult[];
  readonly ceiling: StepResult;
  readonly half: StepResult;
  readonly notes: string[];
}

/**
 * Opens the subscribers, warms up, runs the fixed-rate step, ramps the rate
 * (the fixed step is the ramp's first) until the target saturates, then runs
 * at half the ceiling for the latency figures. Reconnects the subscribers when
 * a saturated step dropped some (a lossless stream ends a slow consumer).
 */
export async function measureFanOut(session: TargetSession, fanOutCase: FanOutCase): Promise<FanOutResult> {
  const notes: string[] = [];
  const reopen = async () => {
    await session.open(fanOutCase.subscribers);
    await session.warmUp(fanOutCase.topics, fanOutCase.payloadBytes);
  };
  await reopen();
  const meanFanOut = fanOutCase.fanOut.reduce((a, b) => a + b, 0) / fanOutCase.fanOut.length;
  const step = (deliveriesPerSecond: number) =>
    runStep(session, {
      topics: fanOutCase.topics,
      fanOut: fanOutCase.fanOut,
      publishRate: Math.max(1, deliveriesPerSecond / meanFanOut),
      payloadBytes: fanOutCase.payloadBytes,
      timing: fanOutCase.timing,
    });
  // A short step first, discarded: the first messages pay for JIT compilation and lazy setup.
  await runStep(session, {
    topics: fanOutCase.topics,
    fanOut: fanOutCase.fanOut,
    publishRate: Math.max(1, fanOutCase.fixedDeliveriesPerSecond / meanFanOut),
    payloadBytes: fanOutCase.payloadBytes,
    timing: { ...fanOutCase.timing, durationMs: fanOutCase.timing.durationMs / 2 },
  });
  const fixed = await step(fanOutCase.fixedDeliveriesPerSecond);
  const ramp = [fixed];
  let offered = fanOutCase.fixedDeliveriesPerSecond;
  // Past saturation, a step that still delivers clearly more than the best so far
  // means a hiccup (a shared machine) stopped the ramp early: keep climbing.
  const keepClimbing = () => {
    const last = ramp[ramp.length - 1]!;
    const bestBefore = Math.max(0, ...ramp.slice(0, -1).map((s) => s.deliveriesPerSecond));
    return last.connectionsEnded === 0 && (!saturated(last) || last.deliveriesPerSecond > 1.1 * bestBefore);
  };
  while (keepClimbing() && ramp.length < fanOutCase.rampSteps) {
    offered *= fanOutCase.rampFactor;
    ramp.push(await step(offered));
  }
  if (!saturated(ramp[ramp.length - 1]!)) notes.push(`not saturated after ${ramp.length} ramp steps: the ceiling is higher`);
  const ceiling = ramp.reduce((best, s) => (s.deliveriesPerSecond > best.deliveriesPerSecond ? s : best));
  const ended = ramp.reduce((n, s) => n + s.connectionsEnded, 0);
  if (ended > 0) notes.push(`${ended} connections ended during the ramp (reconnected before the half-ceiling step)`);
  if (ended > 0 || saturated(ramp[ramp.length - 1]!)) {
    // A saturated step leaves a backlog queued in the server that can take far
    // longer to drain than the step took; reconnecting drops it, so the
    // half-ceiling step measures latency, not the ramp's leftovers.
    await session.closeSubscribers();
    await reopen();
  }
  const half = await step(ceiling.deliveriesPerSecond / 2);
  await session.closeSubscribers();
  return { fixed, ramp, ceiling, half, notes };
}
