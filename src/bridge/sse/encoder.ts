import { Code, ConnectError } from "@connectrpc/connect";
import { errorJson } from "../../wire/error-json.js";

/**
 * The Server-Sent Events wire format, as pure functions over strings: no I/O,
 * no state. Everything here follows the WHATWG HTML Living Standard,
 * §9.2.5 "Parsing an event stream" and §9.2.6 "Interpreting an event stream"
 * (https://html.spec.whatwg.org/multipage/server-sent-events.html).
 *
 * Every block this module returns ends with a blank line, so blocks can be
 * concatenated in any order and written in one go.
 */

/** Longest event id we send or accept, in characters (cursors are far shorter). */
export const maxEventIdLength = 128;

/** One event: a `data` payload with an optional type and id. */
export interface SseEvent {
  /** The event type; browsers dispatch it to `addEventListener(type)`. Omitted means "message". */
  readonly event?: string;
  /** Sets the stream's last event ID, which a reconnecting browser sends as `Last-Event-ID`. */
  readonly id?: string;
  /** The payload. Line endings split it into several `data:` lines, which the reader joins with LF. */
  readonly data: string;
}

/**
 * Why an event id is unacceptable, or undefined when it is fine. §9.2.6:
 * a CR or LF would end the `id:` line early, and browsers ignore an `id`
 * field containing NUL, so such an id would silently not be remembered.
 */
export function eventIdProblem(id: string): string | undefined {
  if (id.length > maxEventIdLength) return `must be at most ${maxEventIdLength} characters`;
  if (/[\0\r\n]/.test(id)) return "must not contain NUL, CR or LF";
  return undefined;
}

/**
 * Checks an event id a client sent (`Last-Event-ID` or `lastEventId`);
 * throws `invalid_argument` naming `what` when it is unacceptable.
 */
export function checkEventId(id: string, what: string): string {
  const problem = eventIdProblem(id);
  if (problem) throw new ConnectError(`${what} ${problem}`, Code.InvalidArgument);
  return id;
}

/**
 * Encodes one event. `data` is split on CRLF, CR and LF (the three line
 * endings of §9.2.5) into one `data:` line each, so no payload can end the
 * event early; proto3 JSON is one line anyway. Throws for an event type or
 * id that would break the framing.
 */
export function encodeEvent(event: SseEvent): string {
  let text = "";
  if (event.event !== undefined) {
    if (event.event === "" || /[\r\n]/.test(event.event)) throw new Error("SSE event type must be non-empty, without CR or LF");
    text += `event: ${event.event}\n`;
  }
  if (event.id !== undefined) {
    const problem = eventIdProblem(event.id);
    if (problem) throw new Error(`SSE event id ${problem}`);
    text += `id: ${event.id}\n`;
  }
  // One "data:" line per line of the payload; an empty payload still needs one
  // line, or §9.2.6 discards the event ("if the data buffer is an empty string").
  for (const line of event.data.split(/\r\n|\r|\n/)) text += `data: ${line}\n`;
  return `${text}\n`;
}

/**
 * A comment line (§9.2.6: a line starting with a colon is ignored), used as
 * a keep-alive: it keeps proxies from timing the connection out and lets
 * clients tell a silent server from a quiet stream.
 */
export function encodeComment(text: string): string {
  return (
    text
      .split(/\r\n|\r|\n/)
      .map((line) => (line === "" ? ":" : `: ${line}`))
      .join("\n") + "\n\n"
  );
}

/**
 * Sets the client's reconnection time (§9.2.6 `retry` field: digits only,
 * milliseconds). The blank line after it dispatches nothing.
 */
export function encodeRetry(milliseconds: number): string {
  if (!Number.isSafeInteger(milliseconds) || milliseconds < 0) throw new Error("SSE retry must be a whole number of milliseconds");
  return `retry: ${milliseconds}\n\n`;
}

/** `event: end`: the stream completed normally; the client should not reconnect. */
export function encodeEnd(): string {
  return encodeEvent({ event: "end", data: "{}" });
}

/**
 * `event: error` with the Connect error JSON `{"code":"...","message":"..."}`
 * (`errorJson`). Pass only errors fit for clients: see `publicError`.
 */
export function encodeError(error: ConnectError): string {
  return encodeEvent({ event: "error", data: JSON.stringify(errorJson(error)) });
}
