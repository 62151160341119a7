import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import type { Entry } from "../broker/broker.js";
import type { SubscriptionEvent } from "../broker/subscription-event.js";
import { decodeCursor, encodeEntryCursor } from "../broker/cursor.js";
import { identityOf, type Identity } from "../auth/identity.js";
import { streamControlsKey } from "../call/stream-controls.js";
import { streamPolicyOf } from "../wire/stream-policy.js";
import {
  ChatMessageSchema,
  ChatService,
  type ChatMessage,
  SignalSchema,
  SubscribeResponseSchema,
  type SubscribeResponse,
} from "../../gen/rivulet/chat/v1/chat_pb.js";
import { GapSchema } from "../../gen/rivulet/stream/v1/gap_pb.js";
import { createCompletions } from "./completions.js";
import { gapOf } from "./gap.js";
import { newId, type ServiceDeps } from "./service-deps.js";
import { presenceChanges } from "./presence-changes.js";
import { startOf, streamTopic } from "./topic-stream.js";
import { publishOnce } from "./publish-once.js";
import { checkIdempotencyKey, checkName, checkRoom, checkText, pageLimit } from "./validate.js";

/** The broker topic of a chat room. */
/** A room's log event as a Subscribe response (module level: one function for every stream, not a closure per stream). */
function chatResponseOf(event: SubscriptionEvent, cursor: string): SubscribeResponse {
  if (event.kind === "gap") {
    return create(SubscribeResponseSchema, { cursor, event: { case: "gap", value: create(GapSchema, gapOf(event.reason)) } });
  }
  const message = fromBinary(ChatMessageSchema, event.entry.data);
  message.cursor = cursor;
  return create(SubscribeResponseSchema, { cursor, event: { case: "message", value: message } });
}

export function roomTopic(room: string): string {
  return `chat.room/${room}`;
}

/** The longest signal kind (DESIGN.md, "Signals"). */
const signalKindMax = 32;

/** The most messages one History page holds (DESIGN.md, "History pages"). */
const historyMaxLimit = 100;
/** The page size of a History request that gives none. */
const historyDefaultLimit = 50;

/** ChatService: rooms (Send, Subscribe, History, Signal, WatchPresence) and streamed completions (Complete, CancelCompletion). */
export function createChatService(deps: ServiceDeps): ServiceImpl<typeof ChatService> {
  const subscribePolicy = streamPolicyOf(ChatService.method.subscribe);
  const responses = new WeakMap<Entry, SubscribeResponse>();
  // The broker hands one signal's bytes to every local listener: decoded once per instance, like entries.
  const signalResponses = new WeakMap<Uint8Array, SubscribeResponse>();
  function signalResponseOf(data: Uint8Array): SubscribeResponse {
    let response = signalResponses.get(data);
    if (response === undefined) {
      // No cursor: a signal has no position in the room's log (docs/semantics.md, "Signals").
      response = create(SubscribeResponseSchema, { cursor: "", event: { case: "signal", value: fromBinary(SignalSchema, data) } });
      signalResponses.set(data, response);
    }
    return response;
  }
  const completions = createCompletions(deps);

  /**
   * Lets a stream open only with `read` access to the room, and keeps it open
   * only while that lasts: a grant with an end (the backend's ttl) is asked
   * for again then, and the stream ends with the refusal once it is gone.
   */
  async function allowStream(identity: Identity, room: string, context: HandlerContext): Promise<void> {
    const recheckAt = await deps.access.check(identity, room, "read");
    const controls = context.values.get(streamControlsKey);
    if (recheckAt === Infinity || !controls) return;
    controls.onEnd(deps.access.keepChecking(identity, room, "read", recheckAt, controls.identify(identity.userId)));
  }

  return {
    async send(request, context) {
      const identity = identityOf(context);
      checkRoom(request.room);
      checkText("text", request.text, 1, 4096);
      checkIdempotencyKey(request.idempotencyKey);
      await deps.access.check(identity, request.room, "write");
      const message = await postChatMessage(deps, request.room, identity.userId, request.text, { method: "chat.send", key: request.idempotencyKey });
      return { message };
    },

    async *subscribe(request, context) {
      const identity = identityOf(context);
      checkRoom(request.room);
      await allowStream(identity, request.room, context);
      const topic = roomTopic(request.room);
      // Before presence: a bad cursor is refused without the caller flickering in and out of the room.
      const from = startOf(topic, request.cursor, request.history, subscribePolicy);
      // The caller is present in the room while this stream is open (docs/semantics.md, "Presence"),
      // however it ends: the stream guard's end-of-call work runs then, also for a stream that
      // detaches to its transport's sink and outlives this handler (StreamLease.release).
      const leave = deps.broker.enterPresence(topic, identity.userId);
      const controls = context.values.get(streamControlsKey);
      if (controls) controls.onEnd(leave);
      try {
        yield* streamTopic({
          hub: deps.hub,
          topic,
          policy: subscribePolicy,
          from,
          bufferSize: deps.subscriberBuffer,
          context,
          cache: responses,
          ephemeral: request.signals ? (deliver) => deps.broker.listenSignals(topic, (data) => deliver(signalResponseOf(data))) : undefined,
          toResponse: chatResponseOf,
        });
      } finally {
        // Without the guard (no end-of-call work), the handler's own end is the stream's.
        if (!controls) leave();
      }
    },

    async history(request, context) {
      const identity = identityOf(context);
      checkRoom(request.room);
      const limit = pageLimit("limit", request.limit, historyMaxLimit, historyDefaultLimit);
      await deps.access.check(identity, request.room, "read");
      const topic = roomTopic(request.room);
      // A bad cursor is invalid_argument, as for Subscribe: malformed, another room's, or ahead of the log.
      const before = request.before === "" ? undefined : decodeCursor(topic, request.before);
      const page = await deps.broker.readBefore(topic, before, limit);
      if (page.gap) {
        // The log the cursor named is gone (docs/semantics.md, "History pages"): an empty page would
        // read as "no older messages", while the client's messages are from a log that no longer exists.
        throw new ConnectError("the room's history was lost since this cursor was issued: page again from the newest (empty before)", Code.FailedPrecondition);
      }
      const messages = page.entries.map((entry) => {
        const message = fromBinary(ChatMessageSchema, entry.data);
        message.cursor = encodeEntryCursor(topic, entry);
        return message;
      });
      const oldest = page.entries[0];
      return { messages, nextBefore: page.more && oldest ? encodeEntryCursor(topic, oldest) : "" };
    },

    async signal(request, context) {
      const identity = identityOf(context);
      checkRoom(request.room);
      checkName("kind", request.kind, signalKindMax);
      await deps.access.check(identity, request.room, "write");
      // The write rate is the user limits' (every unary call takes a token); the author is the token's subject.
      const signal = create(SignalSchema, { userId: identity.userId, kind: request.kind, at: timestampNow() });
      await deps.broker.signal(roomTopic(request.room), toBinary(SignalSchema, signal));
      return {};
    },

    async *watchPresence(request, context) {
      const identity = identityOf(context);
      checkRoom(request.room);
      await allowStream(identity, request.room, context);
      // Watching is not being present: only Subscribe streams count.
      yield* presenceChanges(deps.broker, roomTopic(request.room), context.signal);
    },

    complete: (request, context) => completions.complete(request, context),
    cancelCompletion: (request, context) => completions.cancel(request, context),
  };
}

/**
 * Posts a validated message to a room as `author`, at most once per
 * idempotency key (publish-once.ts), and returns it as stored, with its
 * cursor: what AdminService.PublishMessage posts as any author, and what
 * Send does for the caller.
 */
export async function postChatMessage(
  deps: ServiceDeps,
  room: string,
  author: string,
  text: string,
  idempotency: { readonly method: string; readonly key: string },
): Promise<ChatMessage> {
  const message = create(ChatMessageSchema, { id: newId(), room, author, text, sentAt: timestampNow() });
  const { stored, cursor } = await publishOnce(deps, roomTopic(room), ChatMessageSchema, message, { ...idempotency, caller: author });
  stored.cursor = cursor;
  return stored;
}
