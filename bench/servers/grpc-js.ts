import { createServer } from "node:http";
import { resolve } from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { announce, createTopicHub, handlePublish } from "./topic-hub.js";

// Peer: @grpc/grpc-js serving rivulet.chat.v1.ChatService.Subscribe from our
// .proto files (loaded with @grpc/proto-loader, as grpc-js users do), an
// in-memory fan-out, and `call.write(message)` per subscriber, which is where
// grpc-js serializes: once per subscriber. Publishes arrive on an HTTP/1.1
// control port; a topic is a room.
const definition = protoLoader.loadSync("rivulet/chat/v1/chat.proto", {
  // Bench processes run from the repository root (bench/lib/spawn-process.ts).
  includeDirs: [resolve("proto")],
  keepCase: false,
  longs: String,
  defaults: false,
});
const loaded = grpc.loadPackageDefinition(definition) as unknown as {
  rivulet: { chat: { v1: { ChatService: grpc.ServiceClientConstructor } } };
};
type Call = grpc.ServerWritableStream<{ room?: string }, unknown>;
const hub = createTopicHub<Call>();
let sequence = 0;

const server = new grpc.Server();
server.addService(loaded.rivulet.chat.v1.ChatService.service, {
  subscribe(call: Call) {
    const room = call.request.room ?? "";
    hub.add(room, call);
    call.on("cancelled", () => hub.remove(room, call));
    call.on("error", () => hub.remove(room, call));
  },
});
const control = createServer((req, res) => {
  if (
    !handlePublish(req, res, (topic, payload) => {
      const id = String(++sequence);
      const seconds = Math.floor(Date.now() / 1000);
      // The same shape Rivulet sends: a SubscribeResponse holding a ChatMessage.
      const response = {
        cursor: id,
        message: { id, room: topic, author: "bench-publisher", text: payload.toString("latin1"), sentAt: { seconds: String(seconds), nanos: 0 }, cursor: id },
      };
      for (const call of hub.subscribers(topic)) call.write(response);
    })
  )
    res.writeHead(404).end();
});
server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, port) => {
  if (error) throw error;
  control.listen(0, "127.0.0.1", () => {
    const address = control.address();
    if (address && typeof address === "object") announce(port, address.port);
  });
});
