import { Code, ConnectError } from "@connectrpc/connect";
import { compressionBrotli, compressionGzip } from "@connectrpc/connect-node";
import type { Compression } from "@connectrpc/connect/protocol";

/**
 * The encodings the Connect router accepts (connect-node's gzip and br, in
 * its default order), with one correction: a compressed body that ends early
 * is the client's fault and answers `invalid_argument`, as a corrupt one does.
 *
 * Why: connect-node maps zlib's Z_DATA_ERROR (corrupt) to invalid_argument
 * but leaves Z_BUF_ERROR, zlib's and brotli's "unexpected end of file", as
 * `internal` (HTTP 500). For a one-shot decompression of a whole message the
 * only cause of Z_BUF_ERROR is input that stops before the stream's end: a
 * truncated (or cut-looking corrupt) body, never a fault of the server.
 */
export const requestCompression: Compression[] = [tolerateTruncation(compressionGzip), tolerateTruncation(compressionBrotli)];

function tolerateTruncation(compression: Compression): Compression {
  return {
    name: compression.name,
    compress: (bytes) => compression.compress(bytes),
    decompress: (bytes, readMaxBytes) =>
      compression.decompress(bytes, readMaxBytes).catch((error: unknown) => {
        if (error instanceof ConnectError && error.code === Code.Internal && truncated(error.cause)) {
          throw new ConnectError(error.rawMessage, Code.InvalidArgument, undefined, undefined, error.cause);
        }
        throw error;
      }),
  };
}

function truncated(cause: unknown): boolean {
  return cause instanceof Error && (cause as NodeJS.ErrnoException).code === "Z_BUF_ERROR";
}
