import { brotliCompressSync, gzipSync } from "node:zlib";
import type { DescMessage, Message } from "@bufbuild/protobuf";
// connect-es internals: pinned exactly, guarded by test/platform/pinned-internals.test.ts (docs/development.md, "Pinned versions").
import { compressedFlag, encodeEnvelope } from "@connectrpc/connect/protocol";
import { binaryOf, encodingsOf, type EnvelopeEncoding } from "../encodings.js";

/** connect-node's default: smaller messages are not worth compressing. */
const compressMinBytes = 1024;

/**
 * The response's 5-byte-prefixed Protobuf envelope (Connect and gRPC frame
 * messages alike), made once per response object and encoding and shared by
 * every stream (`encodingsOf`); its content is the binary encoding the
 * WebSocket frames share. As connect-node does, messages under
 * `compressMinBytes` go uncompressed whatever was negotiated (the flag says so).
 */
export function envelopeOf(schema: DescMessage, response: Message, encoding: EnvelopeEncoding): Uint8Array {
  const envelopes = (encodingsOf(response).envelopes ??= {});
  const cached = envelopes[encoding];
  if (cached !== undefined) return cached;
  const binary = binaryOf(schema, response);
  const plain = (envelopes.identity ??= encodeEnvelope(0, binary));
  const envelope = encoding === "identity" || binary.length < compressMinBytes ? plain : encodeEnvelope(compressedFlag, compress(encoding, binary));
  envelopes[encoding] = envelope;
  return envelope;
}

function compress(encoding: "gzip" | "br", data: Uint8Array): Uint8Array {
  return encoding === "gzip" ? gzipSync(data) : brotliCompressSync(data);
}
