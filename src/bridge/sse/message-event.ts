import { toJsonString, type Message } from "@bufbuild/protobuf";
import type { BridgeMethod } from "../../call/method-registry.js";
import { cursorFieldOf } from "../../wire/cursor-field.js";
import { encodingsOf } from "../encodings.js";
import { encodeEvent } from "./encoder.js";

/**
 * A response message as one complete SSE event: `id:` its cursor when the
 * method is resumable, `data:` its proto3 JSON. Made once per message object
 * (`encodingsOf`): N SSE subscribers of a fanned-out message cost one JSON
 * encoding and one UTF-8 Buffer, shared by every write.
 */
export function messageEventOf(method: BridgeMethod, message: Message): Buffer {
  const cursorField = method.policy.resumable ? cursorFieldOf(method.method.output) : undefined;
  const encodings = encodingsOf(message);
  const cached = cursorField ? encodings.sseEventWithId : encodings.sseEventWithoutId;
  if (cached !== undefined) return cached;
  const cursor = cursorField ? (message as unknown as Record<string, unknown>)[cursorField.localName] : undefined;
  const data = toJsonString(method.method.output, message);
  // An empty cursor means "no position": leave the client's last event id as it was.
  const event = Buffer.from(encodeEvent({ id: typeof cursor === "string" && cursor !== "" ? cursor : undefined, data }));
  if (cursorField) encodings.sseEventWithId = event;
  else encodings.sseEventWithoutId = event;
  return event;
}
