import type { HistogramData } from "../lib/histogram.js";
import type { Topic } from "../targets/target.js";
import type { OpenTarget } from "./load-protocol.js";

/** What the connections scenario (bench/scenarios/connections.ts) asks each of its load processes (connections-worker.ts) over IPC. */
export type ConnectionsRequest =
  | (OpenTarget & {
      readonly type: "open";
      /** User ids are `<userPrefix><index>`, so the load processes never share one. */
      readonly userPrefix: string;
      readonly count: number;
      readonly topic: Topic;
      /** Handshakes in flight at once: the scenario keeps all load processes together within the server's listen backlog. */
      readonly inFlight: number;
      /** Stop opening more once this many connections failed: the server takes no more. */
      readonly failureLimit: number;
      /**
       * Give up on the handshakes still unanswered once none has been answered (or failed) for `stallMs`, or once
       * `deadlineMs` have passed in all: a server that stopped answering leaves SYNs and upgrades unanswered, which
       * Linux retries for minutes; a slow one that still progresses gets up to `deadlineMs`.
       */
      readonly stallMs: number;
      readonly deadlineMs: number;
    })
  /** Closes this many of the open connections (the newest): a server out of descriptors then has some for the publisher. */
  | { readonly type: "release"; readonly count: number }
  | { readonly type: "round-reset" }
  | { readonly type: "round-status" }
  | { readonly type: "close" };

/** The load process's answers; times are microseconds on CLOCK_MONOTONIC (lib/marker.ts), which every process of the host shares. */
export type ConnectionsReply =
  | {
      readonly type: "opened";
      /** Connections whose server answered the handshake and that are still open. */
      readonly connected: number;
      readonly attempted: number;
      readonly failed: number;
      /** Handshakes unanswered when it gave up (destroyed). */
      readonly timedOut: number;
      readonly firstError: string | undefined;
      readonly startedAt: number;
      /** When the last answered handshake was answered (0 when none was). */
      readonly lastAnsweredAt: number;
    }
  | { readonly type: "released"; readonly connected: number }
  | { readonly type: "round-reset-done" }
  | {
      readonly type: "round-status";
      readonly connected: number;
      /** Open connections that received at least one marked message since the last reset. */
      readonly received: number;
      readonly delivered: number;
      readonly lastAt: number;
      readonly latency: HistogramData;
      /** Connections that ended after their handshake was answered (the server closed them). */
      readonly endedAfterOpen: number;
      readonly firstError: string | undefined;
    }
  | { readonly type: "closed" };
