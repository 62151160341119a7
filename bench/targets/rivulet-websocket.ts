import { create, toBinary } from "@bufbuild/protobuf";
import { openWebSocket } from "../clients/raw-websocket.js";
import { ClientFrameSchema } from "../../gen/rivulet/bridge/v1/bridge_pb.js";
import { rivuletSubscription } from "./rivulet-request.js";
import type { Target } from "./target.js";

/** Rivulet's WebSocket bridge (`GET /ws`, subprotocol rivulet.v1): one socket per subscriber, one call per topic. */
export const rivuletWebSocket: Target = rivuletWebSocketTarget(false);

/**
 * The same with permessage-deflate offered and compressed messages inflated by
 * the reader: scenario (g), whose server runs with `--ws-compression on`.
 */
export const rivuletWebSocketDeflate: Target = rivuletWebSocketTarget(true);

function rivuletWebSocketTarget(deflate: boolean): Target {
  return {
    name: deflate ? "rivulet-ws-deflate" : "rivulet-ws",
    label: deflate ? "Rivulet WebSocket, permessage-deflate offered" : "Rivulet WebSocket",
    role: "rivulet",
    family: "websocket",
    server: { kind: "rivulet" },
    topicsPerConnection: (spec) => [spec.topics.length],
    connect(spec, context) {
      return [
        openWebSocket({
          port: context.port,
          localAddress: context.localAddress,
          path: "/ws",
          protocol: "rivulet.v1",
          headers: [["authorization", `Bearer ${spec.token}`]],
          scanner: context.newScanner(),
          now: context.now,
          onEnd: context.onEnd,
          deflate,
          onOpen(sender) {
            spec.topics.forEach((topic, index) => {
              const { method, request } = rivuletSubscription(topic);
              const frame = create(ClientFrameSchema, {
                kind: { case: "call", value: { id: index + 1, method, request, headers: { authorization: `Bearer ${spec.token}` } } },
              });
              sender.send(2, toBinary(ClientFrameSchema, frame));
            });
          },
        }),
      ];
    },
  };
}
