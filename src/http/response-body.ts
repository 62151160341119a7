import zlib from "node:zlib";
import type { HttpResponse } from "./mount.js";
import { drainedOrClosed } from "./drained.js";

/**
 * Where a streamed response's body goes after its headers: straight to the
 * response, or through a gzip stream. Every `write` reaches the client at
 * once (no byte is held back for a later one), and backpressure counts what
 * reaches the socket.
 */
export interface ResponseBody {
  /** Writes a chunk for the client now; false when it is behind: wait for `drained()` before writing more. */
  write(chunk: Uint8Array): boolean;
  /** Resolves once more may be written, or the response closed. */
  drained(): Promise<void>;
  /** Writes a last chunk and ends the response. */
  end(chunk: Uint8Array): void;
  /** Frees what the body holds (a zlib stream) at once: the response is gone. */
  destroy(): void;
}

/** The body as is: `res.write`'s own signal is the backpressure. */
export function createIdentityBody(res: HttpResponse): ResponseBody {
  return {
    // Both response classes take a Buffer; TypeScript cannot call the union of their overloads.
    write: (chunk) => (res as { write(chunk: Uint8Array): boolean }).write(chunk),
    drained: () => drainedOrClosed(res),
    end: (chunk) => res.end(chunk),
    destroy: () => undefined,
  };
}

/** How a gzip body compresses and how much it lets queue. */
export interface GzipBodyOptions {
  /** zlib's level, windowBits and memLevel: the memory each response holds for its whole life. */
  readonly zlib: Pick<zlib.ZlibOptions, "level" | "windowBits" | "memLevel">;
  /** Uncompressed bytes written but not yet compressed and handed to the socket above which `write` says wait. */
  readonly maxPendingBytes: number;
}

/**
 * The body gzip-encoded (`Content-Encoding: gzip`), one gzip stream per
 * response: a deflate stream's history is per connection, so compression
 * cannot be shared the way the event bytes are. Every write is compressed
 * with `Z_SYNC_FLUSH` (zlib's `flush` option), so its bytes leave in full at
 * once, ending on a byte boundary the client's inflater can decode without
 * waiting for more: a batch is never held back for the next one.
 *
 * zlib runs on libuv's thread pool, so compressed bytes reach the socket a
 * little after `write` returns. Backpressure counts both what zlib has not yet
 * handed over and what the socket has not taken: `write` returns false while
 * the socket is full or more than `maxPendingBytes` are still with zlib, and
 * `drained()` waits for both, so a slow client holds at most about one batch
 * here, as without compression.
 */
export function createGzipBody(res: HttpResponse, options: GzipBodyOptions): ResponseBody {
  const identity = createIdentityBody(res);
  // A small output buffer: each sync flush of a few events yields a few hundred bytes.
  const gzip = zlib.createGzip({ ...options.zlib, flush: zlib.constants.Z_SYNC_FLUSH, chunkSize: 4096 });
  let pendingBytes = 0;
  let socketFull = false;
  let closed = false;
  const waiting: Array<() => void> = [];
  const blocked = () => !closed && (socketFull || pendingBytes > options.maxPendingBytes);
  const wake = () => {
    if (blocked()) return;
    for (const resolve of waiting.splice(0)) resolve();
  };

  gzip.on("data", (chunk: Buffer) => {
    if (closed) return;
    if (!identity.write(chunk) && !socketFull) {
      socketFull = true;
      void identity.drained().then(() => {
        socketFull = false;
        wake();
      });
    }
  });
  gzip.on("end", () => {
    if (!closed) res.end();
  });
  // A zlib failure is a bug or out of memory: nothing sensible can follow on this response.
  gzip.on("error", () => destroyResponse(res));
  res.once("close", () => {
    closed = true;
    gzip.destroy();
    wake();
  });

  return {
    write(chunk) {
      if (closed) return false;
      pendingBytes += chunk.length;
      // The callback runs once zlib has compressed the chunk and pushed its bytes ('data' above).
      gzip.write(chunk, () => {
        pendingBytes -= chunk.length;
        wake();
      });
      return !blocked();
    },
    drained() {
      if (!blocked()) return Promise.resolve();
      return new Promise<void>((resolve) => waiting.push(resolve));
    },
    end(chunk) {
      if (closed) return;
      gzip.end(chunk);
    },
    destroy() {
      closed = true;
      gzip.destroy();
      wake();
    },
  };
}

function destroyResponse(res: HttpResponse): void {
  if ("stream" in res) res.stream.destroy();
  else res.destroy();
}
