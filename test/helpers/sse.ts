import { once } from "node:events";
import http, { type IncomingHttpHeaders, type IncomingMessage } from "node:http";
import { Readable } from "node:stream";
import zlib from "node:zlib";

/** One event as a raw reader sees it. */
export interface RawSseEvent {
  readonly event?: string;
  readonly id?: string;
  readonly data: string;
}

/**
 * Reads a `fetch` response body as Server-Sent Events with a deliberately
 * literal reader (our server writes LF line endings only): the test sees the
 * wire, not our client's interpretation of it. `retry` and comments are
 * returned as events with `event` "retry" / "comment".
 */
export async function* readSse(response: Response): AsyncGenerator<RawSseEvent> {
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let end: number;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const fields: Record<string, string[]> = {};
        for (const line of block.split("\n")) {
          if (line.startsWith(":")) yield { event: "comment", data: line.slice(1).trim() };
          const colon = line.indexOf(":");
          if (colon <= 0) continue;
          (fields[line.slice(0, colon)] ??= []).push(line.slice(colon + 2));
        }
        if (fields.retry) yield { event: "retry", data: fields.retry[0]! };
        if (fields.data) yield { event: fields.event?.[0], id: fields.id?.[0], data: fields.data.join("\n") };
      }
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}

/** The next `count` data events (message, end, error; not retry or comments) of a raw reader. */
export async function nextEvents(events: AsyncIterator<RawSseEvent>, count: number): Promise<RawSseEvent[]> {
  const result: RawSseEvent[] = [];
  while (result.length < count) {
    const { value, done } = await events.next();
    if (done) break;
    if (value.event === "retry" || value.event === "comment") continue;
    result.push(value);
  }
  return result;
}

/** The SSE URL of a method with its request as proto3 JSON. */
export function ssePath(method: string, request: unknown, query: Record<string, string> = {}): string {
  const params = new URLSearchParams({ message: JSON.stringify(request), ...query });
  return `/sse/${method}?${params.toString()}`;
}

/** A raw HTTP/1.1 SSE response: its head, its events (inflated when gzip-encoded) and how its body ended. */
export interface RawSseResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly events: AsyncGenerator<RawSseEvent>;
  /** Resolves when the body ended whole (for gzip: with its trailer), rejects when it was cut or corrupt. */
  readonly ended: Promise<void>;
  /** Body bytes received so far, as they came on the wire (compressed or not). */
  wireBytes(): number;
}

/**
 * GETs an SSE URL with `node:http`, which sends only the headers given (no
 * Accept-Encoding of its own), and inflates a gzip body incrementally with
 * `Z_SYNC_FLUSH`: each event is read as soon as its bytes arrive, so a server
 * holding compressed bytes back would show as an event that never comes.
 */
export async function getRawSse(url: string, headers: Readonly<Record<string, string>>): Promise<RawSseResponse> {
  const request = http.get(url, { headers: { accept: "text/event-stream", ...headers } });
  const [response] = (await once(request, "response")) as [IncomingMessage];
  let bytes = 0;
  response.on("data", (chunk: Buffer) => (bytes += chunk.length));
  const body: Readable = response.headers["content-encoding"] === "gzip" ? response.pipe(zlib.createGunzip({ flush: zlib.constants.Z_SYNC_FLUSH })) : response;
  const ended = new Promise<void>((resolve, reject) => {
    body.once("end", resolve);
    body.once("error", reject);
    response.once("aborted", () => reject(new Error("response aborted")));
  });
  ended.catch(() => undefined);
  return {
    status: response.statusCode ?? 0,
    headers: response.headers,
    events: readSse(new Response(Readable.toWeb(body) as ReadableStream<Uint8Array>)),
    ended,
    wireBytes: () => bytes,
  };
}
