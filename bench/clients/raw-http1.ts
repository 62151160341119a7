import { connect, type Socket } from "node:net";
import type { MarkerScanner } from "../lib/marker.js";

/** Where to connect, what to GET, and where the body goes. */
export interface StreamingGetOptions {
  readonly port: number;
  readonly localAddress: string;
  /** Path and query. */
  readonly path: string;
  readonly headers: readonly (readonly [string, string])[];
  readonly scanner: MarkerScanner;
  readonly now: () => number;
  /** Called once when the response is not a 200 (with its status line) or the connection ends. */
  readonly onEnd: (reason: string) => void;
}

/**
 * A long-lived HTTP/1.1 GET (an SSE stream) whose body bytes go straight to a
 * marker scanner. Chunked framing needs no decoding: servers write each event
 * (or batch of events) whole, so a chunk-size line never splits a marker.
 * Written by hand for the same reason as raw-h2.ts: the `eventsource` package
 * would cost the load generator more than the server.
 */
export function openStreamingGet(options: StreamingGetOptions): Socket {
  const socket = connect({ port: options.port, host: "127.0.0.1", localAddress: options.localAddress });
  socket.setNoDelay(true);
  let ended = false;
  const end = (reason: string) => {
    if (ended) return;
    ended = true;
    options.onEnd(reason);
  };
  const head = [
    `GET ${options.path} HTTP/1.1`,
    `host: 127.0.0.1:${options.port}`,
    "accept: text/event-stream",
    ...options.headers.map(([n, v]) => `${n}: ${v}`),
  ];
  socket.write(`${head.join("\r\n")}\r\n\r\n`);
  let headerText: string | undefined = "";
  socket.on("data", (chunk: Buffer) => {
    if (headerText !== undefined) {
      headerText += chunk.toString("latin1");
      const endOfHead = headerText.indexOf("\r\n\r\n");
      if (endOfHead === -1) return;
      const statusLine = headerText.slice(0, headerText.indexOf("\r\n"));
      if (!/^HTTP\/1\.1 200 /.test(statusLine)) {
        end(statusLine);
        socket.destroy();
        return;
      }
      // Bytes after the head (latin1: one byte per character) are the start of the body.
      const rest = headerText.length - (endOfHead + 4);
      headerText = undefined;
      if (rest > 0) options.scanner.scan(chunk.subarray(chunk.length - rest), options.now());
      return;
    }
    options.scanner.scan(chunk, options.now());
  });
  socket.on("error", (error) => end(error.message));
  socket.on("close", () => end("closed"));
  return socket;
}
