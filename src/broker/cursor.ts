import { Code, ConnectError } from "@connectrpc/connect";
import type { Entry, Position } from "./broker.js";

/**
 * Cursors are opaque, short, URL-safe strings naming a position in one
 * topic's log. Layout, base64url without padding:
 *
 *   version (1 byte, 1 or 2) | topic tag (4 bytes, FNV-1a of the topic name)
 *   | epoch length (1 byte) | epoch (UTF-8) | offset (unsigned LEB128 varint)
 *   | version 2 only: stamp (4 bytes, big-endian)
 *
 * The topic tag lets a cursor from another topic be refused with
 * invalid_argument instead of being misread as a position in this one.
 *
 * The stamp (version 2, cursors of entries) names the entry itself, not just
 * its offset: its append time in ms modulo 2^32. A Redis failover can hand an
 * acknowledged entry's offset out again in the same epoch (the promoted
 * replica never had the entry); the stamp lets a resume see that the entry at
 * that offset is not the one the client saw, and answer a gap instead of
 * skipping silently. Positions that are no entry (a gap's) stay version 1.
 */
const plainVersion = 1;
const stampedVersion = 2;
const stampLength = 4;
const maxEpochLength = 64;
/** Longest cursor we accept, in characters; longer input is refused unparsed. */
export const maxCursorLength = 128;

/** The stamp of an entry appended at `time` (ms): the low 32 bits, all a cursor keeps. */
export function entryStamp(time: number): number {
  const modulus = 2 ** 32;
  return ((Math.trunc(time) % modulus) + modulus) % modulus;
}

/** Encodes an entry's position, stamped with its append time, as a cursor (version 2). */
export function encodeEntryCursor(topic: string, entry: Entry): string {
  return encodeCursor(topic, { ...entry.position, stamp: entryStamp(entry.time) });
}

/** Encodes a position of `topic` as a cursor: version 2 when it carries a stamp, else version 1. */
export function encodeCursor(topic: string, position: Position): string {
  const epoch = new TextEncoder().encode(position.epoch);
  if (epoch.length > maxEpochLength) throw new Error("epoch too long");
  const stamp = position.stamp;
  if (stamp !== undefined && !(Number.isInteger(stamp) && stamp >= 0 && stamp < 2 ** 32)) throw new Error("stamp out of range");
  const bytes: number[] = [stamp === undefined ? plainVersion : stampedVersion];
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
  if (stamp !== undefined) bytes.push(stamp >>> 24, (stamp >>> 16) & 0xff, (stamp >>> 8) & 0xff, stamp & 0xff);
  return Buffer.from(bytes).toString("base64url");
}

/**
 * Decodes a cursor of `topic` (version 1 or 2; a version 2 cursor's position
 * carries its stamp). Throws ConnectError invalid_argument for a malformed
 * cursor or one that belongs to another topic.
 */
export function decodeCursor(topic: string, cursor: string): Position {
  if (cursor.length > maxCursorLength || !/^[A-Za-z0-9_-]+$/.test(cursor)) {
    throw invalid("malformed cursor");
  }
  const bytes = Buffer.from(cursor, "base64url");
  const version = bytes[0];
  if (version !== plainVersion && version !== stampedVersion) throw invalid("malformed cursor");
  const end = version === stampedVersion ? bytes.length - stampLength : bytes.length;
  if (end < 7) throw invalid("malformed cursor");
  const tag = bytes.readUInt32BE(1);
  if (tag !== topicTag(topic)) throw invalid("cursor belongs to another stream");
  const epochLength = bytes[5] ?? 0;
  const offsetStart = 6 + epochLength;
  if (epochLength === 0 || offsetStart >= end) throw invalid("malformed cursor");
  const epoch = bytes.subarray(6, offsetStart).toString("utf8");
  let offset = 0;
  let scale = 1;
  for (let i = offsetStart; i < end; i++) {
    const byte = bytes[i] ?? 0;
    offset += (byte & 0x7f) * scale;
    scale *= 128;
    const last = (byte & 0x80) === 0;
    if (last !== (i === end - 1) || !Number.isSafeInteger(offset)) {
      throw invalid("malformed cursor");
    }
  }
  if (version === plainVersion) return { epoch, offset };
  return { epoch, offset, stamp: bytes.readUInt32BE(end) };
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
