import type { Entry } from "../broker.js";

/** A stream entry as ioredis returns it in Buffer mode: `[id, [field, value, ...]]`. */
export type RawStreamEntry = [Buffer, Buffer[]];

/**
 * Turns a log entry (id `<base>-<offset>`, fields `t`, `e`, `d`, see
 * redis-scripts.ts) into an Entry. The data is a plain Uint8Array view of
 * the reply's bytes, not a copy.
 */
export function parseStreamEntry(raw: RawStreamEntry): Entry {
  const [id, fields] = raw;
  const text = id.toString("latin1");
  const offset = Number(text.slice(text.indexOf("-") + 1));
  let time = 0;
  let epoch = "";
  let data: Uint8Array = new Uint8Array(0);
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = fields[i]?.toString("latin1");
    const value = fields[i + 1];
    if (!value) continue;
    if (name === "t") time = Number(value.toString("latin1"));
    else if (name === "e") epoch = value.toString("utf8");
    else if (name === "d") data = new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  }
  return { position: { epoch, offset }, data, time };
}

/** The id of a log entry, as text. */
export function streamEntryId(raw: RawStreamEntry): string {
  return raw[0].toString("latin1");
}
