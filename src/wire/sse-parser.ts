import { Code, ConnectError } from "@connectrpc/connect";

/** One dispatched event, as WHATWG HTML §9.2.6 "Interpreting an event stream" defines it. */
export interface ParsedSseEvent {
  /** The `event:` field; "message" when there was none. */
  readonly type: string;
  /** The `data:` lines joined with LF. */
  readonly data: string;
  /** The stream's last event id after this event (ids persist across events). */
  readonly lastEventId: string;
}

/** What the parser reports besides events. */
export interface SseParserHandlers {
  event(event: ParsedSseEvent): void;
  /** A `retry:` field: the server's reconnection time in milliseconds. */
  retry?(milliseconds: number): void;
  /** A comment line (a keep-alive, for Rivulet). */
  comment?(text: string): void;
}

/** Feeds decoded text into an SSE parser; chunks may split lines anywhere. */
export interface SseParser {
  feed(text: string): void;
}

/**
 * An incremental event-stream parser, a direct reading of WHATWG HTML §9.2.5
 * and §9.2.6: lines end with CRLF, LF or CR (even split across chunks); a
 * leading BOM is skipped; `id` with NUL is ignored; `retry` takes digits only;
 * an event with no data is not dispatched. A line or an event over
 * `maxEventLength` characters throws `resource_exhausted` (memory stays
 * bounded whatever the server sends; the client reconnects with backoff).
 *
 * Written by hand because this client must run in browsers and in Node with
 * no runtime dependency, and the browsers' own EventSource can neither send
 * an Authorization header nor show keep-alive comments (which the client
 * needs to detect a silent server).
 */
export function createSseParser(handlers: SseParserHandlers, maxEventLength = defaultMaxEventLength): SseParser {
  let buffer = "";
  let dataLength = 0;
  let started = false;
  let pendingCr = false;
  let data: string[] = [];
  let type = "";
  let lastEventId = "";

  function line(text: string): void {
    if (text === "") {
      // A blank line dispatches (§9.2.6 "dispatch the event").
      if (data.length > 0) handlers.event({ type: type || "message", data: data.join("\n"), lastEventId });
      data = [];
      dataLength = 0;
      type = "";
      return;
    }
    if (text.startsWith(":")) {
      handlers.comment?.(text.slice(1).replace(/^ /, ""));
      return;
    }
    const colon = text.indexOf(":");
    const field = colon < 0 ? text : text.slice(0, colon);
    const value = colon < 0 ? "" : text.slice(colon + 1).replace(/^ /, "");
    switch (field) {
      case "event":
        type = value;
        break;
      case "data":
        data.push(value);
        dataLength += value.length + 1;
        if (dataLength > maxEventLength) throw tooLong(maxEventLength);
        break;
      case "id":
        if (!value.includes("\0")) lastEventId = value;
        break;
      case "retry":
        if (/^\d+$/.test(value)) handlers.retry?.(Number(value));
        break;
      default:
        break; // unknown fields are ignored
    }
  }

  return {
    feed(text) {
      if (!started && text.length > 0) {
        started = true;
        if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      }
      // A CR at the end of the previous chunk already ended its line; an LF right after it belongs to that CRLF.
      if (pendingCr && text.startsWith("\n")) text = text.slice(1);
      pendingCr = false;
      buffer += text;
      let start = 0;
      for (let i = 0; i < buffer.length; i++) {
        const char = buffer.charCodeAt(i);
        if (char !== 10 && char !== 13) continue;
        line(buffer.slice(start, i));
        if (char === 13) {
          if (i + 1 === buffer.length) pendingCr = true;
          else if (buffer.charCodeAt(i + 1) === 10) i++;
        }
        start = i + 1;
      }
      buffer = buffer.slice(start);
      if (buffer.length > maxEventLength) throw tooLong(maxEventLength);
    },
  };
}

/** Rivulet's messages are at most a few MiB of JSON; a stream that never ends its line or event is not one. */
const defaultMaxEventLength = 16 * 1024 * 1024;

function tooLong(max: number): ConnectError {
  return new ConnectError(`the server sent an event or line over ${max} characters`, Code.ResourceExhausted);
}
