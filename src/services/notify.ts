import { create, fromBinary } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import type { Entry } from "../broker/broker.js";
import type { SubscriptionEvent } from "../broker/subscription-event.js";
import { identityOf, requireRole } from "../auth/identity.js";
import { streamPolicyOf } from "../wire/stream-policy.js";
import {
  NotificationSchema,
  NotificationService,
  SubscribeResponseSchema,
  type Notification,
  type SubscribeResponse,
} from "../../gen/rivulet/notify/v1/notify_pb.js";
import { GapSchema } from "../../gen/rivulet/stream/v1/gap_pb.js";
import { gapOf } from "./gap.js";
import { newId, type ServiceDeps } from "./service-deps.js";
import { startOf, streamTopic } from "./topic-stream.js";
import { publishOnce } from "./publish-once.js";
import { checkIdempotencyKey, checkName, checkText, checkUserId } from "./validate.js";

/** The broker topic of one user's notifications. */
/** A user's log event as a Subscribe response (module level: one function for every stream, not a closure per stream). */
function notificationResponseOf(event: SubscriptionEvent, cursor: string): SubscribeResponse {
  if (event.kind === "gap") {
    return create(SubscribeResponseSchema, { cursor, event: { case: "gap", value: create(GapSchema, gapOf(event.reason)) } });
  }
  const notification = fromBinary(NotificationSchema, event.entry.data);
  notification.cursor = cursor;
  return create(SubscribeResponseSchema, { cursor, event: { case: "notification", value: notification } });
}

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
      checkUserId("user_id", request.userId);
      checkNotificationContent(request);
      checkIdempotencyKey(request.idempotencyKey);
      const notification = await storeNotification(deps, request.userId, request, {
        method: "notify.publish",
        caller: identity.userId,
        key: request.idempotencyKey,
      });
      return { notification };
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
        toResponse: notificationResponseOf,
      });
    },
  };
}

/** What a notification says, apart from whom it is for: as NotificationService.Publish and AdminService.Notify take it. */
export interface NotificationContent {
  readonly kind: string;
  readonly title: string;
  readonly body: string;
  readonly data: { readonly [key: string]: string };
}

/** Validates a notification's content: kind, title, body and data (DESIGN.md's limits, as notify.proto documents them). */
export function checkNotificationContent(content: NotificationContent): void {
  checkName("kind", content.kind);
  checkText("title", content.title, 0, 256);
  checkText("body", content.body, 0, 4096);
  const entries = Object.entries(content.data);
  if (entries.length > 32) throw new ConnectError("data has more than 32 entries", Code.InvalidArgument);
  for (const [key, value] of entries) {
    checkText("data key", key, 1, 64);
    checkText("data value", value, 0, 1024);
  }
}

/** Stores one validated notification in the user's log, at most once per idempotency key (see publish-once.ts); returns it as stored, with its cursor. */
export async function storeNotification(
  deps: ServiceDeps,
  userId: string,
  content: NotificationContent,
  idempotency: { readonly method: string; readonly caller: string; readonly key: string },
): Promise<Notification> {
  const notification = create(NotificationSchema, {
    id: newId(),
    userId,
    kind: content.kind,
    title: content.title,
    body: content.body,
    data: { ...content.data },
    createdAt: timestampNow(),
  });
  const { stored, cursor } = await publishOnce(deps, userTopic(userId), NotificationSchema, notification, idempotency);
  stored.cursor = cursor;
  return stored;
}
