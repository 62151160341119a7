import { create, fromBinary } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import type { Entry } from "../broker/broker.js";
import { identityOf, requireRole } from "../auth/identity.js";
import { streamPolicyOf } from "../wire/stream-policy.js";
import { NotificationSchema, NotificationService, SubscribeResponseSchema, type SubscribeResponse } from "../../gen/rivulet/notify/v1/notify_pb.js";
import { GapSchema } from "../../gen/rivulet/stream/v1/gap_pb.js";
import { gapOf } from "./gap.js";
import { newId, type ServiceDeps } from "./service-deps.js";
import { startOf, streamTopic } from "./topic-stream.js";
import { publishOnce } from "./publish-once.js";
import { checkIdempotencyKey, checkName, checkText } from "./validate.js";

/** The broker topic of one user's notifications. */
export function userTopic(userId: string): string {
  return `notify.user/${userId}`;
}

/** NotificationService: publishers send to one user; each user streams only their own. */
export function createNotificationService(deps: ServiceDeps): ServiceImpl<typeof NotificationService> {
  const policy = streamPolicyOf(NotificationService.method.subscribe);
  const responses = new WeakMap<Entry, SubscribeResponse>();

  return {
    async publish(request, context) {
      const identity = identityOf(context);
      requireRole(identity, "publisher");
      checkUserId(request.userId);
      checkName("kind", request.kind);
      checkText("title", request.title, 0, 256);
      checkText("body", request.body, 0, 4096);
      checkIdempotencyKey(request.idempotencyKey);
      const entries = Object.entries(request.data);
      if (entries.length > 32) throw new ConnectError("data has more than 32 entries", Code.InvalidArgument);
      for (const [key, value] of entries) {
        checkText("data key", key, 1, 64);
        checkText("data value", value, 0, 1024);
      }
      const topic = userTopic(request.userId);
      const notification = create(NotificationSchema, {
        id: newId(),
        userId: request.userId,
        kind: request.kind,
        title: request.title,
        body: request.body,
        data: request.data,
        createdAt: timestampNow(),
      });
      const { stored, cursor } = await publishOnce(deps, topic, NotificationSchema, notification, {
        method: "notify.publish",
        caller: identity.userId,
        key: request.idempotencyKey,
      });
      stored.cursor = cursor;
      return { notification: stored };
    },

    async *subscribe(request, context) {
      // The user comes from the credentials, never from the request.
      const topic = userTopic(identityOf(context).userId);
      yield* streamTopic({
        hub: deps.hub,
        topic,
        policy,
        from: startOf(topic, request.cursor, request.history, policy),
        bufferSize: deps.subscriberBuffer,
        context,
        cache: responses,
        toResponse(event, cursor) {
          if (event.kind === "gap") {
            return create(SubscribeResponseSchema, { cursor, event: { case: "gap", value: create(GapSchema, gapOf(event.reason)) } });
          }
          const notification = fromBinary(NotificationSchema, event.entry.data);
          notification.cursor = cursor;
          return create(SubscribeResponseSchema, { cursor, event: { case: "notification", value: notification } });
        },
      });
    },
  };
}

function checkUserId(userId: string): void {
  if (userId.length === 0) throw new ConnectError("user_id is required", Code.InvalidArgument);
  if (userId.length > 128 || !/^[\x21-\x7e]+$/.test(userId)) {
    throw new ConnectError("user_id must be at most 128 printable ASCII characters", Code.InvalidArgument);
  }
}
