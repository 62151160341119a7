import type { OutgoingHttpHeaders } from "node:http";
import { encodeEnvelope } from "@connectrpc/connect/protocol";
import type { ConnectError } from "@connectrpc/connect";
// connect-es internals: pinned exactly, guarded by test/platform/pinned-internals.test.ts (docs/development.md, "Pinned versions").
import { endStreamFlag, endStreamToJson } from "@connectrpc/connect/protocol-connect";
import { setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { createBatchedWriter, writeResponseBlocks, type BatchedWriter, type WriteTarget } from "../../http/batched-writer.js";
import { drainedOrClosed } from "../../http/drained.js";
import type { HttpResponse } from "../../http/mount.js";
import { writeHead } from "../../http/write-head.js";
import type { EnvelopeEncoding } from "../encodings.js";

/** The protocols the stream writer speaks. */
export type Protocol = "connect" | "grpc";

/**
 * One stream's response: headers on the first write or at the end (as
 * connect-node, which lets a call fail before it is committed to),
 * envelopes through the connection's batched writer (one write per turn),
 * and backpressure from the socket (`write` returning false until `drain`).
 */
export interface RpcStreamWriter extends Pick<BatchedWriter, "write" | "congested" | "drained" | "closed"> {
  /** The response encoding negotiated for this stream's messages. */
  readonly encoding: EnvelopeEncoding;
  /** Ends the response: Connect's end-of-stream envelope, or gRPC's status trailers, after what is queued. */
  end(error: ConnectError | undefined, extraHeaders?: OutgoingHttpHeaders): void;
}

/** Wraps an HTTP/1.1 or HTTP/2 response as a Connect or gRPC stream. */
export function createRpcStreamWriter(res: HttpResponse, protocol: Protocol, encoding: EnvelopeEncoding): RpcStreamWriter {
  return new StreamWriter(res, protocol, encoding);
}

class StreamWriter implements RpcStreamWriter, WriteTarget {
  private headersSent = false;
  private readonly out: BatchedWriter;

  constructor(
    private readonly res: HttpResponse,
    private readonly protocol: Protocol,
    readonly encoding: EnvelopeEncoding,
  ) {
    this.out = createBatchedWriter(this, res);
  }

  /** WriteTarget: headers on the first batch, then the batch. */
  writeBatch(chunk: Uint8Array): boolean {
    this.sendHeaders();
    // Both response classes take a Buffer; TypeScript cannot call the union of their overloads.
    return (this.res as { write(chunk: Uint8Array): boolean }).write(chunk);
  }

  /** WriteTarget: a batch of large envelopes as they are, in one vectored write. */
  writeBlocks(blocks: readonly Uint8Array[]): boolean {
    this.sendHeaders();
    return writeResponseBlocks(this.res, blocks);
  }

  /** WriteTarget: the response's next 'drain', or its 'close'. */
  batchDrained(): Promise<void> {
    return drainedOrClosed(this.res);
  }

  get closed(): boolean {
    return this.out.closed;
  }

  write(envelope: Uint8Array): void {
    this.out.write(envelope);
  }

  congested(): boolean {
    return this.out.congested();
  }

  drained(): Promise<void> {
    return this.out.drained();
  }

  end(error: ConnectError | undefined, extraHeaders?: OutgoingHttpHeaders): void {
    if (this.out.closed) return;
    this.sendHeaders(extraHeaders);
    if (this.protocol === "connect") {
      const json = JSON.stringify(endStreamToJson(new Headers(), error, undefined));
      this.res.end(this.out.finish(encodeEnvelope(endStreamFlag, Buffer.from(json))));
      return;
    }
    // The status in trailers after the last messages, as connect-node writes them (no trailers-only responses).
    const rest = this.out.finish();
    (this.res as { addTrailers(trailers: Record<string, string>): void }).addTrailers(Object.fromEntries(setTrailerStatus(new Headers(), error)));
    if (rest === undefined) this.res.end();
    else this.res.end(rest);
  }

  private sendHeaders(extraHeaders?: OutgoingHttpHeaders): void {
    if (this.headersSent) return;
    this.headersSent = true;
    const headers: OutgoingHttpHeaders = { "content-type": this.protocol === "grpc" ? "application/grpc+proto" : "application/connect+proto" };
    if (this.encoding !== "identity") headers[this.protocol === "grpc" ? "grpc-encoding" : "connect-content-encoding"] = this.encoding;
    writeHead(this.res, 200, { ...headers, ...extraHeaders });
  }
}
