import { openH2Connection } from "../clients/raw-h2.js";
import { envelope, rivuletSubscription } from "./rivulet-request.js";
import type { Target } from "./target.js";

/**
 * Rivulet over an HTTP/2 protocol on h2c (Connect or gRPC: they differ only in
 * their request headers here): one connection per subscriber, one stream per topic.
 */
export function rivuletH2Target(name: string, label: string, protocolHeaders: readonly (readonly [string, string])[]): Target {
  return {
    name,
    label,
    role: "rivulet",
    family: "http2",
    server: { kind: "rivulet" },
    topicsPerConnection: (spec) => [spec.topics.length],
    connect(spec, context) {
      const streams = spec.topics.map((topic) => {
        const { method, request } = rivuletSubscription(topic);
        return {
          headers: [
            [":method", "POST"],
            [":scheme", "http"],
            [":path", `/${method}`],
            [":authority", `127.0.0.1:${context.port}`],
            ...protocolHeaders,
            ["authorization", `Bearer ${spec.token}`],
          ] as const,
          body: envelope(request),
        };
      });
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
}
