/** What the bench asks a server's probe (bench/lib/probe.ts) over IPC. */
export type ProbeRequest = { readonly type: "probe-reset" } | { readonly type: "probe-stats"; readonly collectGarbage?: boolean };

/** The probe's answers. CPU and wall time count from the latest reset. */
export type ProbeReply =
  | { readonly type: "probe-reset-done" }
  | {
      readonly type: "probe-stats";
      readonly cpuSeconds: number;
      readonly wallSeconds: number;
      readonly rssBytes: number;
      readonly heapUsedBytes: number;
      readonly eventLoopDelayP99Ms: number;
    };

/** Server stats of one measurement step. */
export type ProbeStats = Omit<Extract<ProbeReply, { type: "probe-stats" }>, "type">;
