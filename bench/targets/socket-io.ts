import { openWebSocket } from "../clients/raw-websocket.js";
import { topicKey, type Target } from "./target.js";

/**
 * Peer: Socket.IO 4 (bench/servers/socket-io.ts), its client spoken by hand over
 * the WebSocket transport (Engine.IO v4: `0` open, `40` connect, `2`/`3`
 * heartbeat, `42[...]` events) so socket.io-client's cost stays out of the numbers.
 */
export const socketIo: Target = {
  name: "socket.io",
  label: "Socket.IO 4",
  role: "peer",
  family: "websocket",
  server: { kind: "bench-server", script: "bench/servers/socket-io.ts" },
  topicsPerConnection: (spec) => [spec.topics.length],
  connect(spec, context) {
    const topics = spec.topics.map(topicKey).join(",");
    return [
      openWebSocket({
        port: context.port,
        localAddress: context.localAddress,
        path: `/socket.io/?EIO=4&transport=websocket&topics=${encodeURIComponent(topics)}`,
        headers: [],
        scanner: context.newScanner(),
        now: context.now,
        onEnd: context.onEnd,
        onOpen: () => undefined,
        onText(text, sender) {
          if (text.startsWith("0{")) sender.send(1, Buffer.from("40"));
          else if (text === "2") sender.send(1, Buffer.from("3"));
        },
      }),
    ];
  },
};
