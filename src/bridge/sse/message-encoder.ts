import { toJsonString, type Message } from "@bufbuild/protobuf";
import type { BridgeMethod } from "../../call/method-registry.js";
import { cursorFieldOf } from "../../wire/cursor-field.js";
import { encodeEvent } from "./encoder.js";

/** Encodes a response message as one complete SSE event. */
export type SseMessageEncoder = (method: BridgeMethod, message: Message) => Buffer;

/**
 * Encodes response messages as events (`id:` the cursor when the method is
 * resumable, `data:` proto3 JSON), once per message object: services hand
 * every subscriber of a fanned-out message the same object, so N SSE
 * subscribers cost one JSON encoding and one UTF-8 Buffer, shared by every
 * write (DESIGN.md "Encode once"). Weak keys: an entry lives as long as
 * some subscriber still holds the message.
 */
export function createSseMessageEncoder(): SseMessageEncoder {
  // Two caches: whether `id:` is written depends on the method, not only on the message.
  const withId = new WeakMap<Message, Buffer>();
  const withoutId = new WeakMap<Message, Buffer>();
  return (method, message) => {
    const cursorField = method.policy.resumable ? cursorFieldOf(method.method.output) : undefined;
    const cache = cursorField ? withId : withoutId;
    let block = cache.get(message);
    if (block === undefined) {
      const cursor = cursorField ? (message as unknown as Record<string, unknown>)[cursorField.localName] : undefined;
      const data = toJsonString(method.method.output, message);
      // An empty cursor means "no position": leave the client's last event id as it was.
      block = Buffer.from(encodeEvent({ id: typeof cursor === "string" && cursor !== "" ? cursor : undefined, data }));
      cache.set(message, block);
    }
    return block;
  };
}
