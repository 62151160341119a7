import type { IncomingHttpHeaders } from "node:http";
import { parseTimeout as parseConnectTimeout } from "@connectrpc/connect/protocol-connect";
import { parseTimeout as parseGrpcTimeout } from "@connectrpc/connect/protocol-grpc";
import { maxTimerDelayMs } from "./timer-at.js";

/**
 * Lowers a client's deadline header (`connect-timeout-ms` for Connect,
 * `grpc-timeout` for gRPC and gRPC-Web) to `maxTimeoutMs` when it asks for
 * more, in place, before connect-node or the stream writer reads it.
 *
 * Why: connect-es refuses a deadline over its `maxTimeoutMs` with
 * invalid_argument, where gRPC servers generally honour what they can; a
 * client with a long default deadline should get a call that ends at the
 * server's maximum, not no call at all. The maximum is also capped at
 * setTimeout's range (connect-es arms the deadline as one timer, and Node
 * fires a longer one after 1 ms), so no configuration can turn a long
 * deadline into an immediate deadline_exceeded. Values that do not parse
 * are left alone for connect-es's parsers to refuse with their own messages.
 */
export function clampDeadline(headers: IncomingHttpHeaders, maxTimeoutMs: number): void {
  const limit = Math.min(maxTimeoutMs, maxTimerDelayMs);
  const connect = headers["connect-timeout-ms"];
  if (typeof connect === "string" && exceeds(parseConnectTimeout(connect, Infinity).timeoutMs, limit)) {
    headers["connect-timeout-ms"] = String(limit);
  }
  const grpc = headers["grpc-timeout"];
  if (typeof grpc === "string" && exceeds(parseGrpcTimeout(grpc, Infinity).timeoutMs, limit)) {
    // gRPC allows 8 digits: whole seconds when the milliseconds do not fit (rounded down: never past the limit).
    headers["grpc-timeout"] = limit <= 99_999_999 ? `${limit}m` : `${Math.floor(limit / 1000)}S`;
  }
}

function exceeds(timeoutMs: number | undefined, limit: number): boolean {
  return timeoutMs !== undefined && timeoutMs > limit;
}
