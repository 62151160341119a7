import { ScalarType, toBinary, type DescField, type DescMessage, type Message } from "@bufbuild/protobuf";

/** Encodes response messages to Protobuf binary, once per object. */
export interface PayloadCache {
  /** The binary encoding of `response`, computed on first use and reused after. */
  encode(schema: DescMessage, response: Message): Uint8Array;
}

/**
 * A cache of binary encodings keyed by the response object itself. Services
 * hand every subscriber of a fanned-out message the very same object (see
 * `createMethodRegistry`), so a message sent to N sockets is encoded once; the
 * WeakMap lets an encoding go when its message does.
 */
export function createPayloadCache(): PayloadCache {
  const encodings = new WeakMap<Message, Uint8Array>();
  return {
    encode(schema, response) {
      let bytes = encodings.get(response);
      if (bytes === undefined) {
        bytes = toBinary(schema, response);
        encodings.set(response, bytes);
      }
      return bytes;
    },
  };
}

const cursorFields = new WeakMap<DescMessage, DescField | null>();

/**
 * The top-level string field named `cursor` of a message type, if it has one:
 * the schema's convention for resumable streams (DESIGN.md, "Cursors"), read
 * from the descriptor so no service-specific code is needed.
 */
export function cursorFieldOf(schema: DescMessage): DescField | undefined {
  let field = cursorFields.get(schema);
  if (field === undefined) {
    field = schema.fields.find((f) => f.name === "cursor" && f.fieldKind === "scalar" && f.scalar === ScalarType.STRING) ?? null;
    cursorFields.set(schema, field);
  }
  return field ?? undefined;
}

/** A response's cursor (its top-level `cursor` field), or "" when its type has none. */
export function cursorOfResponse(schema: DescMessage, response: Message): string {
  const field = cursorFieldOf(schema);
  if (!field) return "";
  const value = (response as unknown as Record<string, unknown>)[field.localName];
  return typeof value === "string" ? value : "";
}
