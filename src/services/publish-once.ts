import { fromBinary, toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { encodeEntryCursor } from "../broker/cursor.js";
import type { ServiceDeps } from "./service-deps.js";

/**
 * Appends a message to a topic's log (a chat room, a user's notifications),
 * at most once per idempotency key, and returns it as stored with its
 * cursor. A retried write whose first attempt was stored gets that first
 * message back, not a second copy: the broker answers with the original entry.
 * The broker remembers keys per topic; the key it is given also names the
 * method and the caller, so two users' keys never collide. An empty
 * `idempotency.key` (the client sent none) stores the message without one.
 */
export async function publishOnce<Desc extends DescMessage>(
  deps: ServiceDeps,
  topic: string,
  schema: Desc,
  message: MessageShape<Desc>,
  idempotency: { readonly method: string; readonly caller: string; readonly key: string },
): Promise<{ readonly stored: MessageShape<Desc>; readonly cursor: string }> {
  const { entry } = await deps.broker.publish(topic, toBinary(schema, message), {
    retention: deps.retention,
    dedupe:
      idempotency.key === ""
        ? undefined
        : { key: `${idempotency.method}/${encodeURIComponent(idempotency.caller)}/${idempotency.key}`, ttlMs: deps.idempotencyTtlMs },
  });
  return { stored: fromBinary(schema, entry.data), cursor: encodeEntryCursor(topic, entry) };
}
