import { create, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import type { Entry, Position, ReadFrom, Retention } from "../broker/broker.js";
import { decodeCursor } from "../broker/cursor.js";
import { subscribe } from "../broker/subscription.js";
import { identityOf } from "../auth/identity.js";
import { streamPolicyOf } from "../wire/stream-policy.js";
import {
  CancelCompletionResponseSchema,
  ChatService,
  CompleteResponseSchema,
  type CancelCompletionRequest,
  type CancelCompletionResponse,
  type CompleteRequest,
  type CompleteResponse,
} from "../../gen/rivulet/chat/v1/chat_pb.js";
import type { GenerateRequest } from "./generator.js";
import { newId, type ServiceDeps } from "./service-deps.js";
import { streamTopic } from "./topic-stream.js";
import { checkId, checkRange, checkText } from "./validate.js";

const defaultMaxTokens = 256;
const maxMaxTokens = 4096;
const roles = new Set(["system", "user", "assistant"]);

/**
 * Resumable completions. Each completion is a topic of its own, named by its
 * owner and id, holding a start event, one event per token and a final event
 * with `finish_reason`. The generation runs in the background on the instance
 * that started it, publishing to that topic; callers only subscribe to it, so
 * dropping a connection never stops the generation, and a caller that comes
 * back with its cursor (on any instance) reads the rest from the log.
 * Cancellation is a record on a second topic that the generating instance
 * listens to.
 */
export function createCompletions(deps: ServiceDeps) {
  const policy = streamPolicyOf(ChatService.method.complete);
  const responses = new WeakMap<Entry, CompleteResponse>();
  const retention: Retention = { maxCount: maxMaxTokens + 16, maxAgeMs: deps.finishedRetention.maxAgeMs };
  const topicOf = (owner: string, id: string) => `chat.completion/${owner}/${id}`;
  const cancelTopicOf = (owner: string, id: string) => `chat.completion-cancel/${owner}/${id}`;

  /** Appends an event on top of `expectHead`: whoever appended something else in between (see `endIfStalled`) wins. */
  function publishEvent(topic: string, fields: MessageInitShape<typeof CompleteResponseSchema>, expectHead: Position) {
    return deps.broker.publish(topic, toBinary(CompleteResponseSchema, create(CompleteResponseSchema, fields)), { retention, expectHead });
  }

  /**
   * Ends a completion whose generator went silent for `completionStallMs`
   * (its instance died, or its model stalled) with `finish_reason: "error"`,
   * so its readers on every instance are not left waiting. Any reader may
   * call this; the append is a compare-and-set on the newest event, so a
   * generator that is still alive and appends first wins, and a generator
   * that comes back later finds its next append refused and stops.
   */
  async function endIfStalled(topic: string): Promise<void> {
    const newest = (await deps.broker.read(topic, { last: 1 }, 1)).entries[0];
    if (!newest || Date.now() - newest.time < deps.completionStallMs) return;
    const event = fromBinary(CompleteResponseSchema, newest.data);
    if (event.finishReason !== "") return;
    await publishEvent(topic, { completionId: event.completionId, finishReason: "error" }, newest.position).catch((error: unknown) => {
      if (!(error instanceof ConnectError && error.code === Code.Aborted)) throw error;
    });
  }

  /** Runs one generation to its end, publishing every token after `start`; never throws. */
  async function run(owner: string, id: string, request: GenerateRequest, start: Position): Promise<void> {
    const topic = topicOf(owner, id);
    const controller = new AbortController();
    let head = start;
    let superseded = false;
    let canceled = false;
    const onShutdown = () => controller.abort(deps.shutdownSignal.reason);
    deps.shutdownSignal.addEventListener("abort", onShutdown);
    // Only this completion's cancel topic: its newest record, if any, means stop.
    void (async () => {
      const cancels = subscribe(deps.hub, cancelTopicOf(owner, id), {
        from: { last: 1 },
        policy: "lossless",
        bufferSize: 4,
        signal: controller.signal,
      });
      for await (const _ of cancels) {
        canceled = true;
        controller.abort(new ConnectError("completion canceled", Code.Canceled));
        break;
      }
    })().catch(() => undefined);

    let completionTokens = 0;
    let promptTokens = 0;
    let finishReason = "error";
    try {
      for await (const event of deps.generator.generate(request, controller.signal)) {
        if (event.kind === "token") {
          completionTokens++;
          head = (await publishEvent(topic, { completionId: id, delta: event.text }, head)).entry.position;
        } else {
          finishReason = event.finishReason;
          promptTokens = event.promptTokens;
        }
      }
    } catch (error) {
      // Aborted: a reader ended this completion as stalled; it has its final event already.
      superseded = error instanceof ConnectError && error.code === Code.Aborted;
      finishReason = canceled ? "canceled" : "error";
    } finally {
      deps.shutdownSignal.removeEventListener("abort", onShutdown);
      if (!controller.signal.aborted) controller.abort();
    }
    if (superseded) return;
    await publishEvent(topic, { completionId: id, finishReason, usage: { promptTokens, completionTokens } }, head).catch(() => undefined);
  }

  async function* complete(request: CompleteRequest, context: HandlerContext): AsyncGenerator<CompleteResponse> {
    const identity = identityOf(context);
    const id = request.completionId || newId();
    if (request.completionId) checkId("completion_id", request.completionId, 64);
    const topic = topicOf(identity.userId, id);
    let from: ReadFrom;
    if (request.cursor) {
      if (!request.completionId) throw new ConnectError("cursor needs completion_id", Code.InvalidArgument);
      const after = decodeCursor(topic, request.cursor);
      const newest = (await deps.broker.read(topic, { last: 1 }, 1)).entries[0];
      if (!newest) throw new ConnectError("completion expired or unknown", Code.NotFound);
      const finished = fromBinary(CompleteResponseSchema, newest.data).finishReason !== "";
      if (finished && after.epoch === newest.position.epoch && after.offset >= newest.position.offset) return;
      from = { after };
    } else {
      const existing = request.completionId ? (await deps.broker.read(topic, { last: 1 }, 1)).head : undefined;
      if (existing && existing.offset > 0) {
        // A known completion without a cursor replays from its start.
        from = { after: { epoch: existing.epoch, offset: 0 } };
      } else {
        const generateRequest = checkCompleteRequest(request);
        // Starting is idempotent per id: only the first caller runs the generator.
        const start = await deps.broker.publish(topic, toBinary(CompleteResponseSchema, create(CompleteResponseSchema, { completionId: id })), {
          retention,
          dedupe: { key: topic, ttlMs: retention.maxAgeMs },
        });
        if (!start.duplicate) void run(identity.userId, id, generateRequest, start.entry.position);
        const { epoch, offset } = start.entry.position;
        from = { after: { epoch, offset: offset - 1 } };
      }
    }
    const events = streamTopic({
      hub: deps.hub,
      topic,
      policy,
      from,
      bufferSize: deps.subscriberBuffer,
      context,
      cache: responses,
      toResponse(event, cursor) {
        if (event.kind === "gap") {
          throw new ConnectError("completion expired: its events are gone", Code.NotFound);
        }
        const response = fromBinary(CompleteResponseSchema, event.entry.data);
        response.cursor = cursor;
        return response;
      },
      until: (response) => response.finishReason !== "",
      // The watchdog below runs while this caller reads: the handler stays.
      detachable: false,
    });
    // While this caller reads, it also watches for a generator gone silent.
    let checking = false;
    const watchdog = setInterval(
      () => {
        if (checking) return;
        checking = true;
        endIfStalled(topic)
          .catch(() => undefined) // the broker is unreachable: the stream itself fails and tells the caller
          .finally(() => (checking = false));
      },
      Math.max(250, deps.completionStallMs / 4),
    );
    watchdog.unref();
    try {
      yield* events;
    } finally {
      clearInterval(watchdog);
    }
  }

  async function cancel(request: CancelCompletionRequest, context: HandlerContext): Promise<CancelCompletionResponse> {
    const identity = identityOf(context);
    checkId("completion_id", request.completionId, 64);
    const newest = (await deps.broker.read(topicOf(identity.userId, request.completionId), { last: 1 }, 1)).entries[0];
    if (!newest) throw new ConnectError("completion expired or unknown", Code.NotFound);
    if (fromBinary(CompleteResponseSchema, newest.data).finishReason !== "") {
      return cancelResponse(false);
    }
    await deps.broker.publish(cancelTopicOf(identity.userId, request.completionId), new Uint8Array(0), {
      retention: { maxCount: 1, maxAgeMs: retention.maxAgeMs },
    });
    return cancelResponse(true);
  }

  return { complete, cancel };
}

function cancelResponse(canceled: boolean): CancelCompletionResponse {
  return create(CancelCompletionResponseSchema, { canceled });
}

function checkCompleteRequest(request: CompleteRequest): GenerateRequest {
  if (request.messages.length === 0) throw new ConnectError("messages is required", Code.InvalidArgument);
  if (request.messages.length > 100) throw new ConnectError("messages has more than 100 turns", Code.InvalidArgument);
  let total = 0;
  for (const message of request.messages) {
    if (!roles.has(message.role)) {
      throw new ConnectError('messages.role must be "system", "user" or "assistant"', Code.InvalidArgument);
    }
    checkText("messages.content", message.content, 0, 32768);
    total += message.content.length;
  }
  if (total > 65536) throw new ConnectError("messages are longer than 65536 characters in all", Code.InvalidArgument);
  if (request.model.length > 128 || !/^[\x21-\x7e]*$/.test(request.model)) {
    throw new ConnectError("model must be at most 128 printable ASCII characters", Code.InvalidArgument);
  }
  checkRange("max_tokens", request.maxTokens, 0, maxMaxTokens);
  return {
    messages: request.messages.map(({ role, content }) => ({ role, content })),
    model: request.model,
    maxTokens: request.maxTokens || defaultMaxTokens,
  };
}
