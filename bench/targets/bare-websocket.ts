import { openWebSocket } from "../clients/raw-websocket.js";
import { topicKey, type Target } from "./target.js";

/** Baseline: bench/servers/bare-websocket.ts, a `ws` server that sends each published payload with a `ws.send` loop. */
export const bareWebSocket: Target = {
  name: "bare-ws",
  label: "bare ws send loop",
  role: "baseline",
  family: "websocket",
  server: { kind: "bench-server", script: "bench/servers/bare-websocket.ts" },
  topicsPerConnection: (spec) => [spec.topics.length],
  connect(spec, context) {
    const topics = spec.topics.map(topicKey).join(",");
    return [
      openWebSocket({
        port: context.port,
        localAddress: context.localAddress,
        path: `/sub?topics=${encodeURIComponent(topics)}`,
        headers: [],
        scanner: context.newScanner(),
        now: context.now,
        onEnd: context.onEnd,
        onOpen: () => undefined,
      }),
    ];
  },
};
