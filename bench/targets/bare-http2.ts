import { openH2Connection } from "../clients/raw-h2.js";
import { topicKey, type Target } from "./target.js";

/** Baseline: bench/servers/bare-http2.ts, `node:http2` with one `stream.write` per payload per subscriber stream. */
export const bareHttp2: Target = {
  name: "bare-h2",
  label: "bare node:http2",
  role: "baseline",
  family: "http2",
  server: { kind: "bench-server", script: "bench/servers/bare-http2.ts" },
  topicsPerConnection: (spec) => [spec.topics.length],
  connect(spec, context) {
    const streams = spec.topics.map((topic) => ({
      headers: [
        [":method", "GET"],
        [":scheme", "http"],
        [":path", `/sub?topic=${encodeURIComponent(topicKey(topic))}`],
        [":authority", `127.0.0.1:${context.port}`],
      ] as const,
    }));
    return [
      openH2Connection({
        port: context.port,
        localAddress: context.localAddress,
        streams,
        scanner: context.newScanner(),
        now: context.now,
        onEnd: context.onEnd,
      }),
    ];
  },
};
