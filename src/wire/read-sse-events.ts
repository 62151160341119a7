import { createSseParser, type ParsedSseEvent } from "./sse-parser.js";

/** What `readSseEvents` reports besides the events it yields. */
export interface ReadSseEventsOptions {
  /** Called for every chunk read, before it is parsed: a sign of life, whatever it holds (a keep-alive, part of an event). */
  readonly onChunk?: () => void;
  /** A `retry:` field: the server's reconnection time in milliseconds. */
  readonly onRetry?: (milliseconds: number) => void;
  /** As `createSseParser`'s: longer lines or events throw `resource_exhausted`. */
  readonly maxEventLength?: number;
}

/**
 * The events of an event-stream body (a `fetch` response's), parsed by
 * `createSseParser` as they arrive: UTF-8 decoded (WHATWG HTML §9.2.5), one
 * chunk read only when the events of the last one are taken. Stopping the
 * iteration (`break`, `return`, a throw) cancels the body; an abort of the
 * request's signal ends the iteration with the fetch's error.
 */
export async function* readSseEvents(
  body: ReadableStream<Uint8Array<ArrayBuffer>>,
  options: ReadSseEventsOptions = {},
): AsyncGenerator<ParsedSseEvent, void, undefined> {
  const events: ParsedSseEvent[] = [];
  const parser = createSseParser({ event: (event) => events.push(event), retry: options.onRetry }, options.maxEventLength);
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  try {
    while (true) {
      const chunk = await reader.read();
      if (chunk.done) return;
      options.onChunk?.();
      parser.feed(chunk.value);
      yield* events.splice(0);
    }
  } finally {
    // Not awaited: nothing depends on the cancellation, and whoever stopped reading should not wait on the network.
    void reader.cancel().catch(() => undefined);
  }
}
