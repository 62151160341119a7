import { create, toBinary } from "@bufbuild/protobuf";
import { SubscribeRequestSchema as ChatSubscribeRequestSchema } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { SubscribeRequestSchema as NotifySubscribeRequestSchema } from "../../gen/rivulet/notify/v1/notify_pb.js";
import type { Topic } from "./target.js";

/** Rivulet's subscription for a topic: ChatService.Subscribe for a room, NotificationService.Subscribe (the caller's own) for a user. */
export function rivuletSubscription(topic: Topic): { method: string; request: Uint8Array; json: string } {
  if (topic.kind === "room") {
    return {
      method: "rivulet.chat.v1.ChatService/Subscribe",
      request: toBinary(ChatSubscribeRequestSchema, create(ChatSubscribeRequestSchema, { room: topic.name })),
      json: JSON.stringify({ room: topic.name }),
    };
  }
  return {
    method: "rivulet.notify.v1.NotificationService/Subscribe",
    request: toBinary(NotifySubscribeRequestSchema, create(NotifySubscribeRequestSchema, {})),
    json: "{}",
  };
}

/** A length-prefixed message (Connect streaming and gRPC share the 5-byte envelope). */
export function envelope(message: Uint8Array): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt32BE(message.length, 1);
  return Buffer.concat([header, message]);
}
