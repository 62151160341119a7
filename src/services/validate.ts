import { Code, ConnectError } from "@connectrpc/connect";
import { isRoomName, roomNameMax } from "../wire/room-name.js";

/**
 * Field rules, checked in one place before a service touches the broker.
 * Each failure is `invalid_argument` naming the field, so clients can show it.
 */
const namePattern = /^[A-Za-z0-9_.-]+$/;
const idPattern = /^[A-Za-z0-9_-]+$/;

/** A name for rooms and kinds: 1 to `max` characters of letters, digits, '-', '_' and '.'. */
export function checkName(field: string, value: string, max = 64): void {
  if (value.length === 0) throw invalid(`${field} is required`);
  if (value.length > max) throw invalid(`${field} is longer than ${max} characters`);
  if (!namePattern.test(value)) throw invalid(`${field} may contain only letters, digits, '-', '_' and '.'`);
}

/** A room name: 1 to 200 characters of letters, digits and `-_.:#,@` (src/wire/room-name.ts). */
export function checkRoom(value: string, field = "room"): void {
  if (isRoomName(value)) return;
  if (value.length === 0) throw invalid(`${field} is required`);
  if (value.length > roomNameMax) throw invalid(`${field} is longer than ${roomNameMax} characters`);
  throw invalid(`${field} may contain only letters, digits, '-', '_', '.', ':', '#', ',' and '@'`);
}

/** An id: 1 to `max` characters of letters, digits, '-' and '_'. */
export function checkId(field: string, value: string, max = 128): void {
  if (value.length === 0) throw invalid(`${field} is required`);
  if (value.length > max || !idPattern.test(value)) {
    throw invalid(`${field} must be 1 to ${max} characters of letters, digits, '-' and '_'`);
  }
}

/** A user id (a token's subject, as another user names it): 1 to 128 printable ASCII characters. */
export function checkUserId(field: string, userId: string): void {
  if (userId.length === 0) throw invalid(`${field} is required`);
  if (userId.length > 128 || !/^[\x21-\x7e]+$/.test(userId)) throw invalid(`${field} must be at most 128 printable ASCII characters`);
}

/** Free text of `min` to `max` characters (Unicode code points); when required (`min` > 0), not whitespace alone. */
export function checkText(field: string, value: string, min: number, max: number): void {
  // A required text needs something to read: whitespace alone (spaces, tabs, line breaks, NBSP) is as empty as "".
  if (min > 0 && !/\S/.test(value)) throw invalid(value === "" ? `${field} is required` : `${field} must not be only whitespace`);
  // A string of n UTF-16 units holds between n/2 and n code points: most need no counting.
  if (value.length <= max && value.length >= 2 * min) return;
  const length = codePoints(value, max + 1);
  if (length < min) throw invalid(min === 1 ? `${field} is required` : `${field} is shorter than ${min} characters`);
  if (length > max) throw invalid(`${field} is longer than ${max} characters`);
}

/** An optional idempotency key: empty, or up to 128 printable ASCII characters. */
export function checkIdempotencyKey(value: string): void {
  if (value.length > 128 || !/^[\x21-\x7e]*$/.test(value)) {
    throw invalid("idempotency_key must be at most 128 printable ASCII characters");
  }
}

/** A number within [min, max]. */
export function checkRange(field: string, value: number, min: number, max: number): void {
  if (!(value >= min && value <= max)) throw invalid(`${field} must be between ${min} and ${max}`);
}

/**
 * A page size of 1 to `max`: 0, which proto3 cannot tell from unset, means
 * `fallback`. Returns the size to use.
 */
export function pageLimit(field: string, value: number, max: number, fallback: number): number {
  if (value > max) throw invalid(`${field} must be at most ${max}`);
  return value === 0 ? fallback : value;
}

/** Counts code points, stopping early at `stopAt`. */
function codePoints(value: string, stopAt: number): number {
  if (value.length < stopAt) {
    let count = 0;
    for (const _ of value) count++;
    return count;
  }
  let count = 0;
  for (const _ of value) if (++count >= stopAt) break;
  return count;
}

function invalid(message: string): ConnectError {
  return new ConnectError(message, Code.InvalidArgument);
}
