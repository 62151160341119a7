import { openH2Connection } from "../clients/raw-h2.js";
import { envelope, rivuletSubscription } from "./rivulet-request.js";
import { topicKey, type Target } from "./target.js";

/**
 * Peer: `@grpc/grpc-js` serving ChatService.Subscribe from our protos
 * (bench/servers/grpc-js.ts). Every topic, personal ones too, is a room there.
 */
export const grpcJs: Target = {
  name: "grpc-js",
  label: "@grpc/grpc-js",
  role: "peer",
  family: "http2",
  server: { kind: "bench-server", script: "bench/servers/grpc-js.ts" },
  topicsPerConnection: (spec) => [spec.topics.length],
  connect(spec, context) {
    const streams = spec.topics.map((topic) => {
      const { method, request } = rivuletSubscription({ kind: "room", name: topicKey(topic) });
      return {
        headers: [
          [":method", "POST"],
          [":scheme", "http"],
          [":path", `/${method}`],
          [":authority", `127.0.0.1:${context.port}`],
          ["content-type", "application/grpc"],
          ["te", "trailers"],
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
