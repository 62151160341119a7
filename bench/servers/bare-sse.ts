import { createServer, type ServerResponse } from "node:http";
import { announce, createTopicHub, handlePublish } from "./topic-hub.js";

// Baseline: Server-Sent Events with node:http, one `res.write` per event per
// subscriber, the event text prepared once per publish. No batching.
const hub = createTopicHub<ServerResponse>();
const server = createServer((req, res) => {
  if (
    handlePublish(req, res, (topic, payload) => {
      const event = `data: ${payload.toString("latin1")}\n\n`;
      for (const subscriber of hub.subscribers(topic)) subscriber.write(event);
    })
  )
    return;
  const url = new URL(req.url ?? "/", "http://localhost");
  if (req.method !== "GET" || url.pathname !== "/sub") {
    res.writeHead(404).end();
    return;
  }
  const topic = url.searchParams.get("topic") ?? "";
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  res.write(": open\n\n");
  hub.add(topic, res);
  res.on("close", () => hub.remove(topic, res));
});
server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  if (address && typeof address === "object") announce(address.port);
});
