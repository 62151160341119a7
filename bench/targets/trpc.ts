import { openStreamingGet } from "../clients/raw-http1.js";
import { openWebSocket } from "../clients/raw-websocket.js";
import { topicKey, type Target } from "./target.js";

const server = { kind: "bench-server", script: "bench/servers/trpc.ts" } as const;

/**
 * Peer: tRPC v11's httpSubscriptionLink (bench/servers/trpc.ts), spoken by the
 * raw HTTP/1.1 reader: `GET /trpc/onMessage?input=<JSON>`, one EventSource per
 * topic, as the link opens them. Each event is `id: <n>` and `data: "<payload>"`
 * (a JSON string; the marker passes through JSON unchanged).
 */
export const trpcSse: Target = {
  name: "trpc-sse",
  label: "tRPC 11 SSE (httpSubscriptionLink)",
  role: "peer",
  family: "sse",
  server,
  topicsPerConnection: (spec) => spec.topics.map(() => 1),
  connect(spec, context) {
    return spec.topics.map((topic) =>
      openStreamingGet({
        port: context.port,
        localAddress: context.localAddress,
        path: `/trpc/onMessage?input=${encodeURIComponent(JSON.stringify({ topic: topicKey(topic) }))}`,
        headers: [],
        scanner: context.newScanner(),
        now: context.now,
        onEnd: context.onEnd,
      }),
    );
  },
};

/**
 * Peer: tRPC v11's wsLink (bench/servers/trpc.ts, `applyWSSHandler`), spoken by
 * the raw WebSocket reader: one socket per user, one JSON-RPC-like
 * `{"id":n,"method":"subscription","params":{"path":"onMessage","input":{…}}}`
 * per topic, as wsLink multiplexes them. Each message comes back as
 * `{"id":n,"result":{"type":"data","data":{"id":"<event id>","data":"<payload>"},"id":"<event id>"}}`
 * (after `{"id":n,"result":{"type":"started"}}`).
 * No `onText`: the server sends `PING` text frames only with keepAlive on (off by
 * default), so the reader need not decode every frame.
 */
export const trpcWebSocket: Target = {
  name: "trpc-ws",
  label: "tRPC 11 WebSocket (wsLink)",
  role: "peer",
  family: "websocket",
  server,
  topicsPerConnection: (spec) => [spec.topics.length],
  connect(spec, context) {
    return [
      openWebSocket({
        port: context.port,
        localAddress: context.localAddress,
        path: "/",
        headers: [],
        scanner: context.newScanner(),
        now: context.now,
        onEnd: context.onEnd,
        onOpen(sender) {
          for (const [index, topic] of spec.topics.entries()) {
            const request = { id: index + 1, method: "subscription", params: { path: "onMessage", input: { topic: topicKey(topic) } } };
            sender.send(1, Buffer.from(JSON.stringify(request)));
          }
        },
      }),
    ];
  },
};
