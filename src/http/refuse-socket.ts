import { STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";

/**
 * Answers a connection that never became an HTTP response object with a
 * status and closes it: an upgrade request refused (unknown path, foreign
 * origin, no subprotocol, too many headers, shutting down) or a request Node
 * could not parse (`clientError`). Nothing else is read from it, so it says
 * `Connection: close` (RFC 9112 §9.6), and `Content-Length` marks where the
 * answer ends (§6.3), the body, when there is one, being plain text. A socket
 * that can no longer be written to (reset, half closed) is destroyed.
 */
export function refuseSocket(socket: Duplex, status: number, body = ""): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const type = body === "" ? "" : "Content-Type: text/plain; charset=utf-8\r\n";
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ""}\r\nConnection: close\r\n${type}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
}
