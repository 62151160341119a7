import { openStreamingGet } from "../clients/raw-http1.js";
import { rivuletSubscription } from "./rivulet-request.js";
import type { Target } from "./target.js";

/** Rivulet's SSE bridge (`GET /sse/<method>?message=<JSON>`): one HTTP/1.1 connection per topic, as EventSource does it. */
export const rivuletSse: Target = {
  name: "rivulet-sse",
  label: "Rivulet SSE",
  role: "rivulet",
  family: "sse",
  server: { kind: "rivulet" },
  topicsPerConnection: (spec) => spec.topics.map(() => 1),
  connect(spec, context) {
    return spec.topics.map((topic) => {
      const { method, json } = rivuletSubscription(topic);
      return openStreamingGet({
        port: context.port,
        localAddress: context.localAddress,
        path: `/sse/${method}?message=${encodeURIComponent(json)}`,
        headers: [["authorization", `Bearer ${spec.token}`]],
        scanner: context.newScanner(),
        now: context.now,
        onEnd: context.onEnd,
      });
    });
  },
};
