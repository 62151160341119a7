/**
 * The close codes of `GET /ws`, in one table (RFC 6455 §7.4.1 defines the
 * 1000–1015 range; §7.4.2 leaves 4000–4999 to applications). docs/protocol.md
 * ("Close codes") is the public copy of this table.
 * `reconnect` is what a client should do when it sees the code with calls
 * still open: true means "reconnect with backoff and resume", false means
 * "the client itself is at fault; reconnecting would send the same bytes again".
 *
 * | code | name                | sent when                                                     | reconnect |
 * | ---- | ------------------- | ------------------------------------------------------------- | --------- |
 * | 1000 | normal closure      | the socket had no open call for the idle timeout               | yes       |
 * | 1002 | protocol error      | the peer broke RFC 6455 framing (sent by `ws` itself)          | no        |
 * | 1003 | unsupported data    | a text frame arrived: the protocol is binary only              | no        |
 * | 1006 | abnormal closure    | never sent: the connection dropped, or a silent peer was terminated | yes  |
 * | 1007 | invalid payload     | a binary frame did not decode as `rivulet.bridge.v1.ClientFrame` | no      |
 * | 1008 | policy violation    | the client stopped reading (pings unanswered behind its backlog for `--idle-timeout`); its calls got `end{resource_exhausted}` first | yes |
 * | 1009 | message too big     | a frame exceeded `--ws-max-payload` (sent by `ws` itself)      | no        |
 * | 1011 | internal error      | the server failed in a way the client did not cause            | yes       |
 * | 1012 | service restart     | the server is shutting down: reconnect (elsewhere) and resume  | yes       |
 * | 4000 | pong timeout        | sent by the client: the server did not answer its `ping` frame | yes       |
 */
export const WebSocketCloseCode = {
  normal: 1000,
  protocolError: 1002,
  unsupportedData: 1003,
  abnormal: 1006,
  invalidPayload: 1007,
  policyViolation: 1008,
  messageTooBig: 1009,
  internalError: 1011,
  serviceRestart: 1012,
  pongTimeout: 4000,
} as const;

/** Close codes after which a client must not replay what it sent: the same bytes would be refused again. */
const clientFaults: ReadonlySet<number> = new Set([
  WebSocketCloseCode.protocolError,
  WebSocketCloseCode.unsupportedData,
  WebSocketCloseCode.invalidPayload,
  WebSocketCloseCode.messageTooBig,
]);

/** Whether a client should reconnect and resume its calls after the socket closed with this code. */
export function shouldReconnect(closeCode: number): boolean {
  return !clientFaults.has(closeCode);
}

/** The WebSocket subprotocol of Rivulet's frames (RFC 6455 §1.9, `Sec-WebSocket-Protocol`). */
export const websocketSubprotocol = "rivulet.v1";
