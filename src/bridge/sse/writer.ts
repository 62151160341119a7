import http2 from "node:http2";
import { createBatchedWriter, flushThresholdBytes, writeResponseBlocks, type BatchedWriter, type WriteTarget } from "../../http/batched-writer.js";
import { createGzipBody, createIdentityBody, type GzipBodyOptions, type ResponseBody } from "../../http/response-body.js";
import { writeHead } from "../../http/write-head.js";
import type { HttpResponse } from "../../http/mount.js";
import { encodeComment, encodeRetry } from "./encoder.js";

/** The options of one SSE response. */
export interface SseWriterOptions {
  /** Response headers sent with the 200. */
  readonly headers: Readonly<Record<string, string>>;
  /** The `retry:` sent first, in milliseconds. */
  readonly retryMs: number;
  /** Keep only the newest unsent message (the method's `conflate` slow-consumer policy). */
  readonly conflate: boolean;
  /**
   * How long the 200 waits for the call's first event. A call that fails at
   * once (bad token, invalid request, forbidden) still gets a real HTTP
   * status; a quiet stream is opened after this, so clients see it is live.
   */
  readonly holdMs: number;
  /**
   * Gzip-encode the body (`Content-Encoding: gzip`), each batch flushed in
   * full as it is written; undefined sends it as is. Only for a client whose
   * `Accept-Encoding` takes gzip.
   */
  readonly gzip?: Omit<GzipBodyOptions, "maxPendingBytes"> | undefined;
  /** Called once when the response is done or the client went away. */
  readonly onClose: () => void;
}

/** What a keep-alive tick found. */
export type TickResult = "idle" | "active" | "stalled";

/**
 * One SSE response: headers, encoded blocks through a batched writer, and
 * backpressure. It knows nothing of methods or calls.
 *
 * - The 200 and its headers are held back until the first write or for
 *   `holdMs`, so a call that fails at once still gets a real HTTP status.
 * - Blocks go through the connection's batched writer (`createBatchedWriter`):
 *   those queued in the same tick leave in one `write` (one system call for
 *   a burst, not one per event), and a queue that reaches the threshold is
 *   written at once. With gzip, that write is one compressed, sync-flushed
 *   chunk: every block written reaches the client whole, none waits for the next.
 * - `ready()` is the backpressure signal: while the socket's buffer is full
 *   (`write` returned false) the caller stops pulling messages until 'drain',
 *   so a slow client holds at most one batch here and the method's own
 *   bounded buffer (lossless) or conflation applies upstream.
 */
export interface SseWriter {
  /** "pending" until the 200 is sent, "open" while streaming, "closed" once ended or gone. */
  state(): "pending" | "open" | "closed";
  /** Queues an encoded message event. */
  message(block: Buffer): void;
  /** Undefined when more may be queued now; else resolves on 'drain' or close. */
  ready(): Promise<void> | undefined;
  /**
   * The shared keep-alive timer's tick, `ticksPerInterval` of them per
   * keep-alive interval: sends a comment to a response that wrote nothing for
   * that many ticks, reports one whose client read nothing for twice that many.
   */
  tick(ticksPerInterval: number): TickResult;
  /**
   * Writes what is queued plus a last block (end or error event) and ends the
   * response. With `closeConnection` an HTTP/1.1 connection is closed after
   * it, so a reconnecting client must open a new one (shutdown: elsewhere).
   */
  end(block: string, closeConnection?: boolean): void;
  /** Before anything was sent: an HTTP error with a JSON body. */
  fail(status: number, body: string, headers?: Readonly<Record<string, string>>): void;
  /** Before anything was sent: 204 No Content, which stops a browser's reconnecting (§9.2.3). */
  noContent(): void;
  /** Drops the connection without a goodbye (a client that stopped reading). */
  destroy(): void;
}

/** A refusal before any event: an HTTP status with a Connect error JSON body, never cached. */
export function sendJsonError(res: HttpResponse, status: number, body: string, headers: Readonly<Record<string, string>> = {}): void {
  writeHead(res, status, { "content-type": "application/json", "cache-control": "no-store", ...headers });
  res.end(body);
}

/** Wraps an HTTP/1.1 or HTTP/2 response as an SSE writer. */
export function createSseWriter(res: HttpResponse, options: SseWriterOptions): SseWriter {
  return new SseWriterImpl(res, options);
}

class SseWriterImpl implements SseWriter, WriteTarget {
  private status: "pending" | "open" | "closed" = "pending";
  /** The response's outgoing queue; its target is `body`, which exists from the 200 on. */
  private readonly out: BatchedWriter;
  /** Conflating: the last message block queued, which the next one replaces while it is still queued. */
  private lastMessage: Buffer | undefined;
  /** Ticks since the last write: a write between two ticks counts from the later one. */
  private idleTicks = 0;
  /** `out.writtenBytes` at the last tick: a change means something was written since. */
  private writtenAtTick = 0;
  private stalledTicks = 0;
  private closeReported = false;
  private holdTimer: NodeJS.Timeout | undefined;
  /** Set when the 200 goes out: where the blocks are written. */
  private body: ResponseBody | undefined;

  constructor(
    private readonly res: HttpResponse,
    private readonly options: SseWriterOptions,
  ) {
    // Nothing is queued before the 200 (`push` opens first), so the body is there by the first write.
    this.out = createBatchedWriter(this, res);
    this.holdTimer = setTimeout(() => {
      this.holdTimer = undefined;
      if (this.status === "pending") this.open();
    }, options.holdMs).unref();
    res.once("close", () => this.close());
  }

  state(): "pending" | "open" | "closed" {
    return this.status;
  }

  /** WriteTarget: where the batched writer's batches go, the body (identity or gzip). */
  writeBatch(chunk: Uint8Array): boolean {
    return this.body!.write(chunk);
  }

  /** WriteTarget: a batch of large events as they are, in one vectored write; joined for a gzip body, which compresses it as one. */
  writeBlocks(blocks: readonly Uint8Array[]): boolean {
    return this.options.gzip ? this.body!.write(Buffer.concat(blocks)) : writeResponseBlocks(this.res, blocks);
  }

  /** WriteTarget: the body caught up. */
  batchDrained(): Promise<void> {
    return this.body!.drained();
  }

  message(block: Buffer): void {
    if (this.status === "closed") return;
    if (this.options.conflate) {
      // Queued message blocks only: comments and `retry:` stay.
      if (this.lastMessage) this.out.withdraw(this.lastMessage);
      this.lastMessage = block;
    }
    this.push(block);
  }

  ready(): Promise<void> | undefined {
    // No early flush is needed here: a queue that reaches the threshold is written at once.
    if (this.status === "closed" || !this.out.congested()) return undefined;
    return this.out.drained();
  }

  tick(ticksPerInterval: number): TickResult {
    // A held response opens by its own timer.
    if (this.status !== "open") return "idle";
    if (this.out.congested()) {
      // Not one byte read by the client for about two whole intervals.
      return ++this.stalledTicks >= 2 * ticksPerInterval ? "stalled" : "active";
    }
    this.stalledTicks = 0;
    if (this.out.writtenBytes !== this.writtenAtTick) {
      this.writtenAtTick = this.out.writtenBytes;
      this.idleTicks = 0;
    }
    // The last write came after the tick `ticksPerInterval` ago: at most one
    // interval of silence, never two.
    if (++this.idleTicks >= ticksPerInterval) {
      this.push(Buffer.from(encodeComment("keep-alive")));
      this.out.flush();
    }
    return "active";
  }

  end(block: string, closeConnection = false): void {
    if (this.status === "closed") return;
    if (closeConnection && !("stream" in this.res)) {
      // Node closes the connection after a response that says so; one whose
      // headers are out already is closed once its last bytes are written.
      if (this.status === "pending") this.res.setHeader("connection", "close");
      else this.res.once("finish", () => this.res.socket?.destroySoon());
    }
    if (this.status === "pending") this.open();
    const payload = this.out.finish(Buffer.from(block));
    this.status = "closed";
    this.body!.end(payload);
  }

  fail(status: number, body: string, headers: Readonly<Record<string, string>> = {}): void {
    if (this.status !== "pending") return;
    this.clearHold();
    this.status = "closed";
    sendJsonError(this.res, status, body, headers);
  }

  noContent(): void {
    if (this.status !== "pending") return;
    this.clearHold();
    this.status = "closed";
    writeHead(this.res, 204, { "cache-control": this.options.headers["cache-control"] ?? "no-cache" });
    this.res.end();
  }

  destroy(): void {
    this.close();
    this.body?.destroy();
    if ("stream" in this.res) {
      // RST_STREAM CANCEL: a plain destroy would reset with NO_ERROR, which a
      // client that stopped reading does not even notice (RFC 9113 §8.1).
      this.res.stream.close(http2.constants.NGHTTP2_CANCEL);
    } else {
      this.res.socket?.destroy();
    }
  }

  private push(block: Buffer): void {
    if (this.status === "pending") this.open();
    this.out.write(block);
  }

  /** Sends the 200 with its headers; `retry:` is the first block (§9.2.6 "retry" field). */
  private open(): void {
    this.clearHold();
    this.status = "open";
    const { gzip } = this.options;
    writeHead(this.res, 200, gzip ? { ...this.options.headers, "content-encoding": "gzip" } : this.options.headers);
    this.body = gzip ? createGzipBody(this.res, { ...gzip, maxPendingBytes: flushThresholdBytes }) : createIdentityBody(this.res);
    this.out.write(Buffer.from(encodeRetry(this.options.retryMs)));
  }

  private clearHold(): void {
    if (this.holdTimer) clearTimeout(this.holdTimer);
    this.holdTimer = undefined;
  }

  private close(): void {
    this.clearHold();
    this.status = "closed";
    this.out.discard();
    this.lastMessage = undefined;
    if (this.closeReported) return;
    this.closeReported = true;
    this.options.onClose();
  }
}
