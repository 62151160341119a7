import { createServer } from "node:http";
import { parseArgs } from "node:util";
import { createAdapter } from "@socket.io/redis-streams-adapter";
import { Redis } from "ioredis";
import { Server } from "socket.io";
import { announce, handlePublish } from "./topic-hub.js";

// Peer: Socket.IO 4 with its defaults (WebSocket transport only, as the
// bench's clients use it); topics are rooms, a publish is `io.to(topic).emit`,
// which encodes the packet once for the whole room. With `--redis <url>`
// (scenario (e)), instances share rooms through `@socket.io/redis-streams-adapter`
// (one Redis stream, named after `--redis-prefix` so runs never meet), as
// Socket.IO's docs set it up with ioredis.
const { values } = parseArgs({ options: { redis: { type: "string" }, "redis-prefix": { type: "string", default: "socket.io" } } });
const prefix = values["redis-prefix"];
const server = createServer((req, res) => {
  if (!handlePublish(req, res, (topic, payload) => io.to(topic).emit("m", payload.toString("latin1")))) {
    // socket.io answers its own paths; anything else is not ours either.
    if (!req.url?.startsWith("/socket.io/")) res.writeHead(404).end();
  }
});
const io = new Server(server, {
  transports: ["websocket"],
  perMessageDeflate: false,
  ...(values.redis ? { adapter: createAdapter(new Redis(values.redis), { streamName: prefix, channelPrefix: prefix }) } : {}),
});
io.on("connection", (socket) => {
  const topics = String(socket.handshake.query.topics ?? "")
    .split(",")
    .filter(Boolean);
  void socket.join(topics);
});
server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  if (address && typeof address === "object") announce(address.port);
});
