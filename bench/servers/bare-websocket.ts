import { createServer } from "node:http";
import { WebSocketServer, type WebSocket } from "ws";
import { announce, createTopicHub, handlePublish } from "./topic-hub.js";

// Baseline: the `ws` README's broadcast, a `send` loop over the topic's clients,
// with the payload prepared once per publish. No batching, no compression.
const hub = createTopicHub<WebSocket>();
const server = createServer((req, res) => {
  if (
    !handlePublish(req, res, (topic, payload) => {
      for (const client of hub.subscribers(topic)) client.send(payload, { binary: true });
    })
  )
    res.writeHead(404).end();
});
const wss = new WebSocketServer({ server, perMessageDeflate: false });
wss.on("connection", (socket, req) => {
  const topics = (new URL(req.url ?? "/", "http://localhost").searchParams.get("topics") ?? "").split(",").filter(Boolean);
  for (const topic of topics) hub.add(topic, socket);
  socket.on("close", () => topics.forEach((topic) => hub.remove(topic, socket)));
  socket.on("error", () => undefined);
});
server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  if (address && typeof address === "object") announce(address.port);
});
