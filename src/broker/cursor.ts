import { Code, ConnectError } from "@connectrpc/connect";
import type { Position } from "./broker.js";

/**
 * Cursors are opaque, short, URL-safe strings naming a position in one
 * topic's log. Layout, base64url without padding:
 *
 *   version (1 byte, = 1) | topic tag (4 bytes, FNV-1a of the topic name)
 *   | epoch length (1 byte) | epoch (UTF-8) | offset (unsigned LEB128 varint)
 *
 * The topic tag lets a cursor from another topic be refused with
 * invalid_argument instead of being misread as a position in this one.
 */
const version = 1;
const maxEpochLength = 64;
/** Longest cursor we accept, in characters; longer input is refused unparsed. */
export const maxCursorLength = 128;

/** Encodes a position of `topic` as a cursor. */
export function encodeCursor(topic: string, position: Position): string {
  const epoch = new TextEncoder().encode(position.epoch);
  if (epoch.length > maxEpochLength) throw new Error("epoch too long");
  const bytes: number[] = [version];
  const tag = topicTag(topic);
  bytes.push(tag >>> 24, (tag >>> 16) & 0xff, (tag >>> 8) & 0xff, tag & 0xff);
  bytes.push(epoch.length, ...epoch);
  let offset = position.offset;
  do {
    let byte = offset % 128;
    offset = Math.floor(offset / 128);
    if (offset > 0) byte |= 0x80;
    bytes.push(byte);
  } while (offset > 0);
  return Buffer.from(bytes).toString("base64url");
}

/**
 * Decodes a cursor of `topic`. Throws ConnectError invalid_argument for a
 * malformed cursor or one that belongs to another topic.
 */
export function decodeCursor(topic: string, cursor: string): Position {
  if (cursor.length > maxCursorLength || !/^[A-Za-z0-9_-]+$/.test(cursor)) {
    throw invalid("malformed cursor");
  }
  const bytes = Buffer.from(cursor, "base64url");
  if (bytes.length < 7 || bytes[0] !== version) throw invalid("malformed cursor");
  const tag = bytes.readUInt32BE(1);
  if (tag !== topicTag(topic)) throw invalid("cursor belongs to another stream");
  const epochLength = bytes[5] ?? 0;
  const offsetStart = 6 + epochLength;
  if (epochLength === 0 || offsetStart >= bytes.length) throw invalid("malformed cursor");
  const epoch = bytes.subarray(6, offsetStart).toString("utf8");
  let offset = 0;
  let scale = 1;
  for (let i = offsetStart; i < bytes.length; i++) {
    const byte = bytes[i] ?? 0;
    offset += (byte & 0x7f) * scale;
    scale *= 128;
    const last = (byte & 0x80) === 0;
    if (last !== (i === bytes.length - 1) || !Number.isSafeInteger(offset)) {
      throw invalid("malformed cursor");
    }
  }
  return { epoch, offset };
}

function invalid(message: string): ConnectError {
  return new ConnectError(message, Code.InvalidArgument);
}

/** 32-bit FNV-1a of the topic name's UTF-16 code units. */
function topicTag(topic: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < topic.length; i++) {
    hash ^= topic.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash >>> 0;
}
