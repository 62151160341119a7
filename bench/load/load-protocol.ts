import type { HistogramData } from "../lib/histogram.js";
import type { Topic } from "../targets/target.js";

/** A subscriber as the orchestrator describes it; the load generator mints its token. */
export interface SubscriberPlan {
  readonly userId: string;
  readonly topics: readonly Topic[];
}

/** Where a load process connects, and how: every "open" request of a load process carries it. */
export interface OpenTarget {
  /** The target's name (`--targets`), whose `connect` the load process runs. */
  readonly target: string;
  readonly port: number;
  /** The bench's HMAC secret, to mint the subscribers' tokens. */
  readonly secret: string;
  readonly sourceAddresses: readonly string[];
}

/** What the orchestrator asks the load generator (bench/load/load-worker.ts) over IPC. */
export type LoadRequest =
  | (OpenTarget & {
      readonly type: "open";
      readonly subscribers: readonly SubscriberPlan[];
    })
  | { readonly type: "round-reset" }
  | { readonly type: "round-status" }
  | { readonly type: "reset" }
  | { readonly type: "report" }
  | { readonly type: "close" }
  | {
      readonly type: "llm";
      readonly mode: "rivulet" | "direct";
      /** An untimed round of the same completions, 20 tokens each, whose report is discarded (JIT warm-up, see scenarios/llm.ts). */
      readonly warmUp?: boolean;
      readonly port: number;
      readonly secret: string;
      readonly completions: number;
      readonly tokenIntervalMs: number;
      readonly sourceAddresses: readonly string[];
    };

/** The load generator's answers. */
export type LoadReply =
  | { readonly type: "opened"; readonly connections: number; readonly ended: number; readonly firstEnd: string | undefined }
  | { readonly type: "round-reset-done" }
  | { readonly type: "round-status"; readonly notReady: number; readonly ended: number; readonly firstEnd: string | undefined }
  | { readonly type: "reset-done" }
  | {
      readonly type: "report";
      readonly delivered: number;
      readonly lastAt: number;
      readonly latency: HistogramData;
      readonly ended: number;
      readonly firstEnd: string | undefined;
      /** The load generator's own CPU time since the last reset: near one second per second means it, not the server, may be the limit. */
      readonly cpuSeconds: number;
      /** Bytes the subscribers' sockets received since the last reset. */
      readonly bytes: number;
    }
  | { readonly type: "closed" }
  | LlmReport;

/** Time to first token and gaps between tokens of concurrent completions. */
export interface LlmReport {
  readonly type: "llm-done";
  readonly completed: number;
  readonly failed: number;
  readonly firstError: string | undefined;
  readonly tokens: number;
  readonly timeToFirstToken: HistogramData;
  readonly interToken: HistogramData;
}
