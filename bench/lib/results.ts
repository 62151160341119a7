import type { StepResult } from "./measure-step.js";
import type { Target } from "../targets/target.js";

/** Idle memory per connection (scenario c). */
export interface IdleResult {
  readonly connections: number;
  readonly rssBytesPerConnection: number;
  readonly heapBytesPerConnection: number;
  readonly rssBytes: number;
}

/** Token streams (scenario d). */
export interface LlmResult {
  readonly completions: number;
  readonly failed: number;
  readonly tokens: number;
  readonly timeToFirstTokenMs: { readonly p50: number; readonly p99: number };
  readonly interTokenMs: { readonly p50: number; readonly p99: number; readonly p999: number };
  readonly serverCpuSeconds: number | undefined;
  readonly eventLoopDelayP99Ms: number | undefined;
}

/** SSE with and without gzip (scenario f). */
export interface CompressionResult {
  readonly deliveries: number;
  /** What the subscribers' sockets read (chunked framing and gzip included), per delivered message. */
  readonly wireBytesPerDelivery: number;
  /** The server's user + system CPU, publishes included, per delivered message. */
  readonly serverCpuMicrosPerDelivery: number;
  /** RSS (after a full GC) per subscribed, idle connection. */
  readonly rssBytesPerConnection: number;
}

/** One message published to every idle connection (connections scenario): when its last copy arrived. */
export interface FanOutMessage {
  readonly delivered: number;
  readonly expected: number;
  /** From the publish call to the last delivery, measured by the load processes on the machine's monotonic clock. */
  readonly lastDeliveryMs: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

/** Many idle connections on one server (connections scenario): how many it held, what they cost, one message to all. */
export interface ConnectionsResult {
  readonly requested: number;
  /** Handshakes answered and still open when the idle window began. */
  readonly connected: number;
  readonly attempted: number;
  readonly failed: number;
  readonly timedOut: number;
  /** Connections that never received a warm-up message (not subscribed, or lost). */
  readonly notSubscribed: number;
  readonly firstError: string | undefined;
  readonly loadProcesses: number;
  readonly sourceAddresses: number;
  /** From the first handshake sent to the last one answered, over every load process. */
  readonly connectSeconds: number;
  /** Connections closed after the server refused more, so that it had descriptors for the publisher's connection. */
  readonly released: number;
  readonly serverProcesses: number;
  readonly rssBytes: number;
  readonly rssBytesPerConnection: number;
  /** "after GC" (the probe's full GC, one process) or "no GC" (/proc, summed over the server's processes). */
  readonly rssMethod: "after GC" | "no GC";
  readonly idleWindowSeconds: number;
  /** The server's user + system CPU over the idle window, summed over its processes; NaN (null in JSON) when not measured. */
  readonly idleCpuSeconds: number;
  readonly heartbeat: string;
  /** Connections the server closed during the idle window. */
  readonly endedWhileIdle: number;
  readonly fanOut: readonly FanOutMessage[];
  /** Where it stopped, when it held fewer than requested (the first error, the server's exit). */
  readonly limit: string | undefined;
  /** The machine's limits that bound the count: descriptors per process, listen backlog, ephemeral ports. */
  readonly machineLimits: string;
  /** The server's listening socket's backlog, as `ss` reports it. */
  readonly listenBacklog: string;
  /** Connections the kernel dropped from a full listen queue while these opened (machine-wide, TcpExt ListenOverflows). */
  readonly listenOverflows: number;
}

/** One row of the results: a target in one case of one scenario. */
export interface Row {
  readonly scenario: "broadcast" | "rooms" | "idle" | "llm" | "redis" | "sse-compression" | "ws-compression" | "connections";
  /** The case within the scenario, e.g. "1000 subscribers, 64 B". */
  readonly case: string;
  readonly target: string;
  readonly label: string;
  readonly role: Target["role"];
  readonly family: Target["family"];
  /** Why this row has no numbers (a bridge or broker missing on this checkout). */
  readonly skipped?: string;
  /** The step at the same fixed rate for every target. */
  readonly fixed?: StepResult;
  /** Every step of the ramp, in order. */
  readonly ramp?: readonly StepResult[];
  /** The ramp step with the most deliveries per second. */
  readonly ceiling?: StepResult;
  /** A step at half the ceiling: the latency figures the targets speak of. */
  readonly half?: StepResult;
  readonly idle?: IdleResult;
  readonly llm?: LlmResult;
  readonly compression?: CompressionResult;
  readonly connections?: ConnectionsResult;
  readonly notes?: readonly string[];
}

/** What `npm run bench` writes to bench/results/<time>.json. */
export interface BenchResults {
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly quick: boolean;
  readonly machine: { readonly cpus: number; readonly model: string; readonly node: string; readonly pinned: boolean; readonly loadAverage: readonly number[] };
  readonly rows: readonly Row[];
}
