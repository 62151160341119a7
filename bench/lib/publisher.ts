import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { createClient, type Client } from "@connectrpc/connect";
import WebSocket from "ws";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { createHmacTokens } from "../../src/auth/tokens.js";
import { ClientFrameSchema, ServerFrameSchema } from "../../gen/rivulet/bridge/v1/bridge_pb.js";
import { ChatService, SendRequestSchema } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { NotificationService, PublishRequestSchema } from "../../gen/rivulet/notify/v1/notify_pb.js";
import { topicKey, type Topic } from "../targets/target.js";

/** Publishes one payload to a topic; resolves when the server accepted it. */
export interface Publisher {
  publish(topic: Topic, payload: string): Promise<void>;
}

/**
 * Rivulet's publisher: ChatService.Send for rooms, NotificationService.Publish
 * (payload in `body`) for users, with the generated Connect client over h2c,
 * as a back end would publish. `BENCH_RIVULET_PUBLISHER=grpc` makes the same
 * calls over gRPC (connect-node's gRPC transport, h2c); `websocket` as `call`
 * frames (below).
 */
export async function createRivuletPublisher(port: number, secret: string): Promise<Publisher> {
  const token = await createHmacTokens(secret).mint({ userId: "bench-publisher", roles: ["publisher"], ttlSeconds: 24 * 3600 });
  if (process.env.BENCH_RIVULET_PUBLISHER === "websocket") return createWebSocketPublisher(port, token);
  const baseUrl = `http://127.0.0.1:${port}`;
  // No compressed responses: a Send response echoes the message, and gzipping a 1 KiB echo per publish cost the server
  // 4 to 8 % of its CPU, which the baselines' empty answers to POST /publish do not. A back end that publishes a lot
  // would turn it off too (bench/README.md, "How it measures").
  const transport =
    process.env.BENCH_RIVULET_PUBLISHER === "grpc"
      ? createGrpcTransport({ baseUrl, acceptCompression: [] })
      : createConnectTransport({ baseUrl, httpVersion: "2", acceptCompression: [] });
  const chat: Client<typeof ChatService> = createClient(ChatService, transport);
  const notify: Client<typeof NotificationService> = createClient(NotificationService, transport);
  const options = { headers: { authorization: `Bearer ${token}` } };
  return {
    async publish(topic, payload) {
      if (topic.kind === "room") await chat.send({ room: topic.name, text: payload }, options);
      else await notify.publish({ userId: topic.name, kind: "bench", body: payload }, options);
    },
  };
}

/** The baselines' and peers' publisher: `POST /publish?topic=` on their HTTP/1.1 control port (bench/servers/topic-hub.ts). */
export function createControlPublisher(controlPort: number): Publisher {
  return {
    async publish(topic, payload) {
      const response = await fetch(`http://127.0.0.1:${controlPort}/publish?topic=${encodeURIComponent(topicKey(topic))}`, { method: "POST", body: payload });
      if (response.status !== 204) throw new Error(`publish answered HTTP ${response.status}`);
    },
  };
}

/**
 * An experiment (`BENCH_RIVULET_PUBLISHER=websocket`, bench/README.md "Rooms
 * latency"): the same Send and Publish calls as `call` frames over Rivulet's
 * WebSocket bridge (16 sockets, round-robin), which invokes them through the
 * same interceptors without an HTTP request or connect-node per call. Open
 * calls per socket are limited (`RIVULET_WS_MAX_CALLS`, default 100): raise it
 * in the environment for rates past the server's ceiling.
 */
async function createWebSocketPublisher(port: number, token: string): Promise<Publisher> {
  const pending = new Map<number, { resolve: () => void; reject: (error: Error) => void }>();
  let nextId = 1;
  const sockets = await Promise.all(
    Array.from(
      { length: 16 },
      () =>
        new Promise<WebSocket>((resolve, reject) => {
          const socket = new WebSocket(`ws://127.0.0.1:${port}/ws`, "rivulet.v1", { headers: { authorization: `Bearer ${token}` } });
          socket.binaryType = "nodebuffer";
          socket.once("open", () => resolve(socket));
          socket.once("error", reject);
          socket.on("message", (data: Buffer) => {
            const frame = fromBinary(ServerFrameSchema, data);
            if (frame.kind.case !== "end") return;
            const call = pending.get(frame.kind.value.id);
            pending.delete(frame.kind.value.id);
            const error = frame.kind.value.error;
            if (error) call?.reject(new Error(`${error.code}: ${error.message}`));
            else call?.resolve();
          });
        }),
    ),
  );
  const headers = { authorization: `Bearer ${token}` };
  return {
    publish(topic, payload) {
      const id = nextId++;
      const call =
        topic.kind === "room"
          ? { method: "rivulet.chat.v1.ChatService/Send", request: toBinary(SendRequestSchema, create(SendRequestSchema, { room: topic.name, text: payload })) }
          : {
              method: "rivulet.notify.v1.NotificationService/Publish",
              request: toBinary(PublishRequestSchema, create(PublishRequestSchema, { userId: topic.name, kind: "bench", body: payload })),
            };
      return new Promise<void>((resolve, reject) => {
        pending.set(id, { resolve, reject });
        sockets[id % sockets.length]!.send(toBinary(ClientFrameSchema, create(ClientFrameSchema, { kind: { case: "call", value: { id, ...call, headers } } })));
      });
    },
  };
}
