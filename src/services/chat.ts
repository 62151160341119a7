import { create, fromBinary } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { Entry } from "../broker/broker.js";
import { identityOf } from "../auth/identity.js";
import { streamPolicyOf } from "../wire/stream-policy.js";
import { ChatMessageSchema, ChatService, SubscribeResponseSchema, type SubscribeResponse } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { GapSchema } from "../../gen/rivulet/stream/v1/gap_pb.js";
import { createCompletions } from "./completions.js";
import { gapOf } from "./gap.js";
import { newId, type ServiceDeps } from "./service-deps.js";
import { startOf, streamTopic } from "./topic-stream.js";
import { publishOnce } from "./publish-once.js";
import { checkIdempotencyKey, checkName, checkText } from "./validate.js";

/** The broker topic of a chat room. */
export function roomTopic(room: string): string {
  return `chat.room/${room}`;
}

/** ChatService: rooms (Send, Subscribe) and streamed completions (Complete, CancelCompletion). */
export function createChatService(deps: ServiceDeps): ServiceImpl<typeof ChatService> {
  const subscribePolicy = streamPolicyOf(ChatService.method.subscribe);
  const responses = new WeakMap<Entry, SubscribeResponse>();
  const completions = createCompletions(deps);

  return {
    async send(request, context) {
      const identity = identityOf(context);
      checkName("room", request.room);
      checkText("text", request.text, 1, 4096);
      checkIdempotencyKey(request.idempotencyKey);
      const topic = roomTopic(request.room);
      const message = create(ChatMessageSchema, {
        id: newId(),
        room: request.room,
        author: identity.userId,
        text: request.text,
        sentAt: timestampNow(),
      });
      const { stored, cursor } = await publishOnce(deps, topic, ChatMessageSchema, message, {
        method: "chat.send",
        caller: identity.userId,
        key: request.idempotencyKey,
      });
      stored.cursor = cursor;
      return { message: stored };
    },

    async *subscribe(request, context) {
      identityOf(context);
      checkName("room", request.room);
      const topic = roomTopic(request.room);
      yield* streamTopic({
        hub: deps.hub,
        topic,
        policy: subscribePolicy,
        from: startOf(topic, request.cursor, request.history, subscribePolicy),
        bufferSize: deps.subscriberBuffer,
        context,
        cache: responses,
        toResponse(event, cursor) {
          if (event.kind === "gap") {
            return create(SubscribeResponseSchema, { cursor, event: { case: "gap", value: create(GapSchema, gapOf(event.reason)) } });
          }
          const message = fromBinary(ChatMessageSchema, event.entry.data);
          message.cursor = cursor;
          return create(SubscribeResponseSchema, { cursor, event: { case: "message", value: message } });
        },
      });
    },

    complete: (request, context) => completions.complete(request, context),
    cancelCompletion: (request, context) => completions.cancel(request, context),
  };
}
