import { createServer as createHttpServer } from "node:http";
import { createServer, type ServerHttp2Stream } from "node:http2";
import { announce, createTopicHub, handlePublish } from "./topic-hub.js";

// Baseline: node:http2 (h2c) with one stream per subscription and one
// `stream.write` per payload per stream; Node's default settings. Publishes
// arrive on a separate HTTP/1.1 control port (h2c cannot share one with HTTP/1.1
// without the preface sniffing Rivulet does).
const hub = createTopicHub<ServerHttp2Stream>();
const server = createServer();
server.on("stream", (stream, headers) => {
  const url = new URL(String(headers[":path"] ?? "/"), "http://localhost");
  if (url.pathname !== "/sub") {
    stream.respond({ ":status": 404 }, { endStream: true });
    return;
  }
  const topic = url.searchParams.get("topic") ?? "";
  stream.respond({ ":status": 200, "content-type": "application/octet-stream" });
  hub.add(topic, stream);
  stream.on("close", () => hub.remove(topic, stream));
  stream.on("error", () => undefined);
});
server.on("sessionError", () => undefined);
const control = createHttpServer((req, res) => {
  if (
    !handlePublish(req, res, (topic, payload) => {
      for (const stream of hub.subscribers(topic)) stream.write(payload);
    })
  )
    res.writeHead(404).end();
});
server.listen(0, "127.0.0.1", () => {
  control.listen(0, "127.0.0.1", () => {
    const address = server.address();
    const controlAddress = control.address();
    if (address && typeof address === "object" && controlAddress && typeof controlAddress === "object") announce(address.port, controlAddress.port);
  });
});
