import http2 from "node:http2";
import { createGzipBody, createIdentityBody, type GzipBodyOptions, type ResponseBody } from "../../http/response-body.js";
import { createTurnFlush } from "../../http/turn-flush.js";
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
  /** Queued bytes that trigger a write at once instead of at the end of the tick. */
  readonly flushBytes: number;
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
 * One SSE response: headers, a queue of encoded blocks, batching and
 * backpressure. It knows nothing of methods or calls.
 *
 * - The 200 and its headers are held back until the first write or for
 *   `holdMs`, so a call that fails at once still gets a real HTTP status.
 * - Blocks queued in the same tick go out in one `write` (one system call for
 *   a burst, not one per event); more than `flushBytes` are written at once.
 *   With gzip, that write is one compressed, sync-flushed chunk: every
 *   block written reaches the client whole, none waits for the next.
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

interface Block {
  readonly bytes: Buffer;
  readonly message: boolean;
}

/** Responses with blocks waiting for the end of the turn: one setImmediate for all of them. */
const turn = createTurnFlush<SseWriterImpl>();

function scheduleFlush(writer: SseWriterImpl): void {
  turn.schedule(writer);
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

class SseWriterImpl implements SseWriter {
  private status: "pending" | "open" | "closed" = "pending";
  private queue: Block[] = [];
  private queuedBytes = 0;
  private drained: Promise<void> | undefined;
  /** Ticks since the last write: a write between two ticks counts from the later one. */
  private idleTicks = 0;
  private stalledTicks = 0;
  private closeReported = false;
  private holdTimer: NodeJS.Timeout | undefined;
  /** Set when the 200 goes out: where the blocks are written. */
  private body: ResponseBody | undefined;

  constructor(
    private readonly res: HttpResponse,
    private readonly options: SseWriterOptions,
  ) {
    this.holdTimer = setTimeout(() => {
      this.holdTimer = undefined;
      if (this.status !== "pending") return;
      this.open();
      scheduleFlush(this);
    }, options.holdMs).unref();
    res.once("close", () => this.close());
    // A write to a socket that just failed: 'close' follows and ends the call.
    res.on("error", () => undefined);
  }

  state(): "pending" | "open" | "closed" {
    return this.status;
  }

  message(block: Buffer): void {
    if (this.status === "closed") return;
    if (this.options.conflate) this.dropQueuedMessages();
    this.push({ bytes: block, message: true });
  }

  ready(): Promise<void> | undefined {
    if (this.status === "closed") return undefined;
    if (!this.drained && this.queuedBytes >= this.options.flushBytes) this.flush();
    return this.drained;
  }

  tick(ticksPerInterval: number): TickResult {
    // A held response opens by its own timer.
    if (this.status !== "open") return "idle";
    if (this.drained) {
      // Not one byte read by the client for about two whole intervals.
      return ++this.stalledTicks >= 2 * ticksPerInterval ? "stalled" : "active";
    }
    this.stalledTicks = 0;
    // The last write came after the tick `ticksPerInterval` ago: at most one
    // interval of silence, never two.
    if (++this.idleTicks >= ticksPerInterval) {
      this.push({ bytes: Buffer.from(encodeComment("keep-alive")), message: false });
      this.flush();
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
    this.push({ bytes: Buffer.from(block), message: false });
    turn.cancel(this);
    const payload = this.take();
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

  /** Writes everything queued in one call. */
  flush(): void {
    if (this.status === "closed" || this.queue.length === 0 || this.drained) return;
    const payload = this.take();
    this.idleTicks = 0;
    if (!this.body!.write(payload)) {
      this.drained = this.body!.drained().then(() => {
        this.drained = undefined;
        this.stalledTicks = 0;
        // Blocks queued while the socket was full (keep-alives) go now.
        if (this.queue.length > 0) scheduleFlush(this);
      });
    }
  }

  private push(block: Block): void {
    if (this.status === "pending") this.open();
    this.queue.push(block);
    this.queuedBytes += block.bytes.length;
    scheduleFlush(this);
  }

  /** Sends the 200 with its headers; `retry:` is the first block (§9.2.6 "retry" field). */
  private open(): void {
    this.clearHold();
    this.status = "open";
    const { gzip } = this.options;
    writeHead(this.res, 200, gzip ? { ...this.options.headers, "content-encoding": "gzip" } : this.options.headers);
    this.body = gzip ? createGzipBody(this.res, { ...gzip, maxPendingBytes: this.options.flushBytes }) : createIdentityBody(this.res);
    const retry = Buffer.from(encodeRetry(this.options.retryMs));
    this.queue.unshift({ bytes: retry, message: false });
    this.queuedBytes += retry.length;
  }

  private take(): Buffer {
    const blocks = this.queue;
    this.queue = [];
    this.queuedBytes = 0;
    // One message fanned out is one shared Buffer: written as is, never copied.
    return blocks.length === 1 ? blocks[0]!.bytes : Buffer.concat(blocks.map((b) => b.bytes));
  }

  private dropQueuedMessages(): void {
    if (!this.queue.some((b) => b.message)) return;
    this.queue = this.queue.filter((b) => !b.message);
    this.queuedBytes = this.queue.reduce((sum, b) => sum + b.bytes.length, 0);
  }

  private clearHold(): void {
    if (this.holdTimer) clearTimeout(this.holdTimer);
    this.holdTimer = undefined;
  }

  private close(): void {
    this.clearHold();
    this.status = "closed";
    turn.cancel(this);
    this.queue = [];
    this.queuedBytes = 0;
    if (this.closeReported) return;
    this.closeReported = true;
    this.options.onClose();
  }
}
