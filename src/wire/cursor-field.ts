import { ScalarType, type DescField, type DescMessage } from "@bufbuild/protobuf";

const cache = new WeakMap<DescMessage, DescField | null>();

/**
 * The top-level `cursor` string field of a message, or undefined. DESIGN.md
 * "Cursors": responses of resumable streams carry their position there and
 * requests accept one there; this convention (with the method's `resumable`
 * option) is all the bridge knows about resuming, so any new resumable
 * method works over SSE unchanged.
 */
export function cursorFieldOf(message: DescMessage): DescField | undefined {
  let field = cache.get(message);
  if (field === undefined) {
    const found = message.fields.find((f) => f.name === "cursor" && f.fieldKind === "scalar" && f.scalar === ScalarType.STRING && f.oneof === undefined);
    field = found ?? null;
    cache.set(message, field);
  }
  return field ?? undefined;
}
