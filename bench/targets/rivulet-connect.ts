import { openH2Connection } from "../clients/raw-h2.js";
import { envelope, rivuletSubscription } from "./rivulet-request.js";
import type { Target } from "./target.js";

/** Rivulet over the Connect protocol on h2c: one connection per subscriber, one stream per topic. */
export const rivuletConnect: Target = {
  name: "rivulet-connect",
  label: "Rivulet Connect (h2c)",
  role: "rivulet",
  family: "http2",
  server: { kind: "rivulet" },
  topicsPerConnection: (spec) => [spec.topics.length],
  connect(spec, context) {
    const streams = spec.topics.map((topic) => {
      const { method, request } = rivuletSubscription(topic);
      return {
        headers: [
          [":method", "POST"], [":scheme", "http"], [":path", `/${method}`], [":authority", `127.0.0.1:${context.port}`],
          ["content-type", "application/connect+proto"], ["connect-protocol-version", "1"], ["authorization", `Bearer ${spec.token}`],
        ] as const,
        body: envelope(request),
      };
    });
    return [openH2Connection({ port: context.port, localAddress: context.localAddress, streams, scanner: context.newScanner(), now: context.now, onEnd: context.onEnd })];
  },
};
