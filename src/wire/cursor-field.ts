import { ScalarType, type DescField, type DescMessage, type Message } from "@bufbuild/protobuf";

/**
 * The schema's naming conventions that servers and clients read from the
 * descriptors, so no service-specific code is needed (DESIGN.md "Cursors"):
 * a resumable stream's requests accept, and its responses carry, a top-level
 * string field `cursor`; a write that may be replayed has `idempotency_key`.
 * "Top-level" means a plain field: a member of a oneof is not one.
 */
export function stringFieldOf(schema: DescMessage, name: string): DescField | undefined {
  return schema.fields.find((f) => f.name === name && f.fieldKind === "scalar" && f.scalar === ScalarType.STRING && f.oneof === undefined);
}

const cursorFields = new WeakMap<DescMessage, DescField | null>();

/** The top-level `cursor` string field of a message type, or undefined; looked up once per type. */
export function cursorFieldOf(schema: DescMessage): DescField | undefined {
  let field = cursorFields.get(schema);
  if (field === undefined) {
    field = stringFieldOf(schema, "cursor") ?? null;
    cursorFields.set(schema, field);
  }
  return field ?? undefined;
}

/** The value of a top-level string field of a message. */
export function stringValueOf(message: Message, field: DescField): string {
  const value = (message as unknown as Record<string, unknown>)[field.localName];
  return typeof value === "string" ? value : "";
}

/** A message's cursor (its top-level `cursor` field), or "" when its type has none. */
export function cursorOf(schema: DescMessage, message: Message): string {
  const field = cursorFieldOf(schema);
  return field ? stringValueOf(message, field) : "";
}
