import { parseArgs } from "node:util";
import { allTargets, targetNamed } from "../targets/all-targets.js";
import type { Target } from "../targets/target.js";
import type { StepTiming } from "./measure-step.js";

/**
 * The scenarios of issue 7, (a) to (e), SSE gzip (f) and WebSocket permessage-deflate (g) of issue 12, and the
 * connections scenario of issue 17, in run order.
 */
export const scenarioNames = ["broadcast", "rooms", "idle", "llm", "redis", "sse-compression", "ws-compression", "connections"] as const;
/**
 * What runs without `--scenarios`: all but `connections`, which opens 100,000 connections per target (10,000 with
 * `--quick`) and is asked for by name.
 */
const defaultScenarios: readonly ScenarioName[] = scenarioNames.filter((name) => name !== "connections");
/** One of `scenarioNames`. */
export type ScenarioName = (typeof scenarioNames)[number];

/** Everything a bench run measures and how long it spends: `--quick` shrinks counts and steps. */
export interface BenchOptions {
  readonly quick: boolean;
  readonly scenarios: readonly ScenarioName[];
  readonly targets: readonly Target[];
  /** Scenario (a): subscriber counts and payload sizes, every combination. */
  readonly broadcastSubscribers: readonly number[];
  readonly payloadBytes: readonly number[];
  /** Scenario (b): users, in rooms of ten, each also with a personal topic. */
  readonly roomUsers: number;
  /** Scenario (c). */
  readonly idleConnections: number;
  /** Scenario (d). */
  readonly llmCompletions: number;
  readonly llmTokenIntervalMs: number;
  /** Scenario (e): subscribers on the second instance, publishes per second. */
  readonly redisSubscribers: number;
  readonly redisPublishRate: number;
  /** Scenario (g): WebSocket subscribers of one topic, publishes per second. */
  readonly compressionSubscribers: number;
  readonly compressionPublishRate: number;
  /** The connections scenario: idle subscribers per target (`--connections`). */
  readonly connections: number;
  /** Its idle window, over which the server's CPU is read (heartbeats included). */
  readonly connectionsIdleMs: number;
  /** Messages published one at a time to every connection, each timed to its last delivery. */
  readonly connectionsFanOutMessages: number;
  readonly fixedDeliveriesPerSecond: number;
  readonly rampFactor: number;
  readonly rampSteps: number;
  readonly timing: StepTiming;
  /** `--cpu-prof`: server processes write V8 CPU profiles here (open them in Chrome DevTools). */
  readonly cpuProfileDirectory: string | undefined;
  /** Where the JSON goes; undefined writes none. */
  readonly resultsDirectory: string | undefined;
}

/** The full run (`npm run bench`) or the quick one (`npm run bench -- --quick`). */
export function defaultOptions(quick: boolean): BenchOptions {
  return {
    quick,
    scenarios: defaultScenarios,
    targets: allTargets,
    broadcastSubscribers: quick ? [250] : [1000, 5000],
    payloadBytes: quick ? [64] : [64, 1024],
    roomUsers: quick ? 100 : 1000,
    idleConnections: quick ? 1000 : 10_000,
    llmCompletions: quick ? 100 : 500,
    llmTokenIntervalMs: 30,
    // Far below every ceiling (5,000 deliveries/s): the hop's latency, not a backlog's.
    redisSubscribers: quick ? 100 : 1000,
    redisPublishRate: quick ? 20 : 5,
    // 20,000 deliveries/s (2,000 quick): far below the ceiling, so CPU per delivery is the cost of the work, not of a backlog.
    compressionSubscribers: quick ? 100 : 1000,
    compressionPublishRate: 20,
    connections: quick ? 10_000 : 100_000,
    // Whole multiples of Rivulet's default 15 s keepalive, so that every connection's heartbeat falls in the window as
    // often in every run (a 10 s window caught one round in one run and none in the next).
    connectionsIdleMs: quick ? 15_000 : 30_000,
    connectionsFanOutMessages: 3,
    fixedDeliveriesPerSecond: 10_000,
    // ×2.5 per step: 10,000 to 976,000 deliveries/s in six steps, past what one core
    // serves (five steps, 390,000, no longer saturated Rivulet's fan-out).
    rampFactor: 2.5,
    rampSteps: quick ? 5 : 6,
    timing: quick ? { durationMs: 400, maxDrainMs: 1000 } : { durationMs: 1000, maxDrainMs: 1500 },
    cpuProfileDirectory: undefined,
    resultsDirectory: new URL("../results/", import.meta.url).pathname,
  };
}

const usage = `Usage: npm run bench -- [--quick] [--scenarios broadcast,rooms,idle,llm,redis,sse-compression,ws-compression,connections] [--targets ${allTargets.map((t) => t.name).join(",")}]
  [--subscribers 1000,5000] [--payloads 64,1024] [--idle-connections 10000] [--connections 100000] [--cpu-prof] [--no-json]`;

/** Parses `npm run bench` arguments; throws with the usage on a bad one. */
export function parseBenchArgs(argv: readonly string[]): BenchOptions {
  let values;
  try {
    values = parseArgs({
      args: [...argv],
      options: {
        quick: { type: "boolean" },
        scenarios: { type: "string" },
        targets: { type: "string" },
        subscribers: { type: "string" },
        payloads: { type: "string" },
        "idle-connections": { type: "string" },
        connections: { type: "string" },
        "no-json": { type: "boolean" },
        "cpu-prof": { type: "boolean" },
        help: { type: "boolean" },
      },
      strict: true,
    }).values;
  } catch (error) {
    throw new Error(`${error instanceof Error ? error.message : String(error)}\n${usage}`, { cause: error });
  }
  if (values.help) throw new Error(usage);
  const defaults = defaultOptions(values.quick === true);
  const list = (text: string | undefined) =>
    text
      ?.split(",")
      .map((s) => s.trim())
      .filter(Boolean);
  const numbers = (text: string | undefined, name: string) => {
    const items = list(text)?.map(Number);
    if (items?.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`--${name} takes positive whole numbers\n${usage}`);
    return items;
  };
  const scenarios = list(values.scenarios);
  for (const name of scenarios ?? []) {
    if (!(scenarioNames as readonly string[]).includes(name)) throw new Error(`unknown scenario "${name}"\n${usage}`);
  }
  return {
    ...defaults,
    scenarios: (scenarios as ScenarioName[] | undefined) ?? defaults.scenarios,
    targets: list(values.targets)?.map(targetNamed) ?? defaults.targets,
    broadcastSubscribers: numbers(values.subscribers, "subscribers") ?? defaults.broadcastSubscribers,
    payloadBytes: numbers(values.payloads, "payloads") ?? defaults.payloadBytes,
    idleConnections: numbers(values["idle-connections"], "idle-connections")?.[0] ?? defaults.idleConnections,
    connections: numbers(values.connections, "connections")?.[0] ?? defaults.connections,
    cpuProfileDirectory: values["cpu-prof"] ? new URL("../results/profiles/", import.meta.url).pathname : undefined,
    resultsDirectory: values["no-json"] ? undefined : defaults.resultsDirectory,
  };
}
