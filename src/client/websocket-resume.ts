import { clone, ScalarType, type DescMessage, type DescMethod, type Message } from "@bufbuild/protobuf";
import { stringFieldOf } from "../wire/cursor-field.js";
import { streamPolicyOf } from "../wire/stream-policy.js";

/**
 * What the WebSocket transport reads from the schema to replay calls safely,
 * with no service-specific code: the `cursor` convention of resumable streams
 * (DESIGN.md, "Cursors") and the `idempotency_key` convention of writes.
 */

function fieldsOf(message: Message): Record<string, unknown> {
  return message as unknown as Record<string, unknown>;
}

/** A resumable stream: declared so in the schema, with a top-level `cursor` in its request and responses. */
export function isResumable(method: DescMethod): boolean {
  return (
    method.methodKind === "server_streaming" &&
    streamPolicyOf(method).resumable &&
    stringFieldOf(method.input, "cursor") !== undefined &&
    stringFieldOf(method.output, "cursor") !== undefined
  );
}

/**
 * The request that resumes a stream after `last`, its last response: the
 * original request with `cursor` set to the response's cursor, and every other
 * top-level string field the request left empty filled from the response's
 * field of the same name (so `ChatService.Complete` resumes its
 * `completion_id` rather than starting a new completion).
 */
export function resumeRequest(input: DescMessage, output: DescMessage, request: Message, last: Message | undefined): Message {
  if (last === undefined) return request;
  const resumed = clone(input, request);
  const target = fieldsOf(resumed);
  const source = fieldsOf(last);
  for (const field of input.fields) {
    if (field.fieldKind !== "scalar" || field.scalar !== ScalarType.STRING) continue;
    const from = stringFieldOf(output, field.name);
    const value = from ? source[from.localName] : undefined;
    if (typeof value !== "string" || value === "") continue;
    if (field.name === "cursor" || target[field.localName] === "") target[field.localName] = value;
  }
  return resumed;
}

/**
 * Whether a stream may resume after this response: it has a non-empty
 * `cursor`, or its type has none. A response with an empty cursor has no
 * position in the stream (a chat signal, never stored): resuming after it
 * would drop the cursor and start the stream over, so the resume keeps the
 * last response that had one.
 */
export function isResumePoint(output: DescMessage, response: Message): boolean {
  const field = stringFieldOf(output, "cursor");
  return field === undefined || fieldsOf(response)[field.localName] !== "";
}

/**
 * Gives a write a top-level `idempotency_key` when its type has one and the
 * caller left it empty, so the transport can replay the write after a lost
 * connection without it taking effect twice. Returns whether the request now
 * carries a key.
 */
export function ensureIdempotencyKey(input: DescMessage, request: Message): boolean {
  const field = stringFieldOf(input, "idempotency_key");
  if (!field) return false;
  const fields = fieldsOf(request);
  if (fields[field.localName] === "") fields[field.localName] = randomKey();
  return true;
}

/** The request's `idempotency_key`, or "" when its type has none or it is empty. */
export function idempotencyKeyOf(input: DescMessage, request: Message): string {
  const field = stringFieldOf(input, "idempotency_key");
  const value = field ? fieldsOf(request)[field.localName] : undefined;
  return typeof value === "string" ? value : "";
}

/** Whether the method's request type has a top-level `idempotency_key`: a write the server deduplicates. */
export function hasIdempotencyKey(input: DescMessage): boolean {
  return stringFieldOf(input, "idempotency_key") !== undefined;
}

/** 128 random bits in hex: `crypto.getRandomValues` exists in browsers (insecure contexts too) and Node. */
function randomKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
