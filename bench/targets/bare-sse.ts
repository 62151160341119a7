import { openStreamingGet } from "../clients/raw-http1.js";
import { topicKey, type Target } from "./target.js";

/** Baseline: bench/servers/bare-sse.ts, `node:http` with one `res.write` per event per subscriber. */
export const bareSse: Target = {
  name: "bare-sse",
  label: "bare node:http SSE",
  role: "baseline",
  family: "sse",
  server: { kind: "bench-server", script: "bench/servers/bare-sse.ts" },
  topicsPerConnection: (spec) => spec.topics.map(() => 1),
  connect(spec, context) {
    return spec.topics.map((topic) =>
      openStreamingGet({
        port: context.port,
        localAddress: context.localAddress,
        path: `/sub?topic=${encodeURIComponent(topicKey(topic))}`,
        headers: [],
        scanner: context.newScanner(),
        now: context.now,
        onEnd: context.onEnd,
      }),
    );
  },
};
