import type { EventEmitter } from "node:events";
import type { Writable } from "node:stream";
import type { HttpResponse } from "./mount.js";

/**
 * Queued bytes past which a batch is written at once instead of at the end of
 * the turn: a burst then costs one write per 64 KiB, and no more than that
 * waits in the queue, whatever the transport. 64 KiB is also the TCP socket's
 * high-water mark since Node 22, so one batch fills it.
 */
export const flushThresholdBytes = 64 * 1024;

/**
 * Mean block size from which a batch goes to a target that can take it as a
 * vector (`WriteTarget.writeBlocks`) instead of being joined into one Buffer.
 * Joining copies every byte of every connection's batch into a fresh Buffer:
 * cheap for small events (the batch comes from Node's 8 KiB pool), but for
 * 1 KiB events a 64 KiB batch per connection is a new ArrayBuffer and 64 KiB
 * copied, per connection per batch, and the garbage of the whole fan-out. A
 * vector writes the fanned-out message's one shared Buffer to every socket
 * (`writev`), at the cost of one stream write per block.
 */
export const vectorMinBlockBytes = 512;

/**
 * Where a batched writer's batches go: a response body, a socket. Usually the
 * owner itself (the SSE writer, the RPC stream writer, a WebSocket's outbox),
 * hence the distinct method names: one object per connection, with its methods
 * on a prototype, rather than an object of closures beside it.
 */
export interface WriteTarget {
  /** Writes one chunk; false when the target is behind: `batchDrained()` says when it caught up. */
  writeBatch(chunk: Uint8Array): boolean;
  /**
   * Writes several blocks as one batch without joining them (a vectored write:
   * the blocks are not copied); false as `writeBatch`. When absent, or when the
   * blocks are small (`vectorMinBlockBytes`), they are joined for `writeBatch`.
   */
  writeBlocks?(blocks: readonly Uint8Array[]): boolean;
  /** Resolves once the target took what it holds, or closed. */
  batchDrained(): Promise<void>;
  /** Whether the target still takes bytes; a flush while it does not drops what is queued (a WebSocket past OPEN). Always, when absent. */
  batchOpen?(): boolean;
  /** Backpressure measured by the target instead of by `writeBatch` returning false (ws's `bufferedAmount` past a bound). */
  batchCongested?(): boolean;
}

/**
 * One connection's outgoing queue. Blocks queued in one event-loop turn go to
 * the target in one write at its end: one system call for a burst rather
 * than one per message, the cost that dominates fan-out on loopback
 * (DESIGN.md "Performance"). A batch of one block is written as is, never
 * copied, so a fanned-out message stays one shared Buffer; so is a batch of
 * large blocks, to a target that takes a vector (`writeBlocks`).
 */
export interface BatchedWriter {
  /** Queues a block; written with the turn's others at its end, or at once when the queue reaches `flushThresholdBytes`. */
  write(block: Uint8Array): void;
  /** Takes `block` back if it is still queued (conflation: a newer message replaces it). */
  withdraw(block: Uint8Array): void;
  /** Writes what is queued now, in one write. */
  flush(): void;
  /**
   * Stops the writer and returns what is queued followed by `last`, as one
   * chunk for the owner's final write (`res.end(chunk)`), so a stream's last
   * bytes and its end leave together; undefined when there is nothing.
   */
  finish(last: Uint8Array): Uint8Array;
  finish(): Uint8Array | undefined;
  /** Drops what is queued and takes no more (the connection is closing or gone). */
  discard(): void;
  /** Whether the target is behind: callers stop queueing until `drained()`. */
  congested(): boolean;
  /** Resolves at once when not congested, else when the target catches up or closes. */
  drained(): Promise<void>;
  /** True once finished, discarded, or the stream closed. */
  readonly closed: boolean;
  /** Bytes written to the target so far (WebSocket liveness: whether anything reached the peer lately; SSE keep-alive). */
  readonly writtenBytes: number;
}

/**
 * Creates the batched writer of one connection or response. It ignores
 * `stream`'s 'error' (a failed write; 'close' follows) and discards its queue
 * on its 'close'.
 */
export function createBatchedWriter(target: WriteTarget, stream: EventEmitter): BatchedWriter {
  return new Writer(target, stream);
}

/** Writers with blocks waiting for the end of the turn. */
const dirty = new Set<Writer>();
let turnScheduled = false;

/**
 * One `setImmediate` per turn for every writer of every transport:
 * setImmediate runs after this turn's I/O and promise callbacks, so every
 * block a broker fan-out or a history replay queued by then leaves in one
 * write per connection, whatever the number of connections.
 */
function flushTurn(): void {
  turnScheduled = false;
  const writers = [...dirty];
  dirty.clear();
  for (const writer of writers) {
    writer.scheduled = false;
    try {
      writer.flush();
    } catch (error) {
      // One writer's bug must not leave the others' bytes unwritten, nor end the process.
      process.emitWarning(error instanceof Error ? error : new Error(String(error)), "RivuletFlushWarning");
    }
  }
}

const ignore = (): void => undefined;

class Writer implements BatchedWriter {
  /** Whether this writer waits in `dirty` for the end of the turn. */
  scheduled = false;
  closed = false;
  writtenBytes = 0;
  private queue: Uint8Array[] = [];
  private queuedBytes = 0;
  /** Set while the target is behind (a write returned false): resolves when it caught up. */
  private waiting: Promise<void> | undefined;

  constructor(
    private readonly target: WriteTarget,
    stream: EventEmitter,
  ) {
    stream.on("error", ignore);
    stream.once("close", () => this.discard());
  }

  write(block: Uint8Array): void {
    if (this.closed) return;
    this.queue.push(block);
    this.queuedBytes += block.length;
    if (this.queuedBytes >= flushThresholdBytes) return this.flush();
    if (this.scheduled) return;
    this.scheduled = true;
    dirty.add(this);
    if (turnScheduled) return;
    turnScheduled = true;
    setImmediate(flushTurn);
  }

  withdraw(block: Uint8Array): void {
    const at = this.queue.lastIndexOf(block);
    if (at < 0) return;
    this.queue.splice(at, 1);
    this.queuedBytes -= block.length;
  }

  flush(): void {
    const bytes = this.queuedBytes;
    const blocks = this.takeBlocks();
    if (blocks.length === 0 || this.target.batchOpen?.() === false) return;
    this.writtenBytes += bytes;
    const written =
      blocks.length === 1
        ? this.target.writeBatch(blocks[0]!)
        : this.target.writeBlocks !== undefined && bytes >= vectorMinBlockBytes * blocks.length
          ? this.target.writeBlocks(blocks)
          : this.target.writeBatch(Buffer.concat(blocks, bytes));
    // The promise is kept in `waiting` for `drained()`; it never rejects.
    if (!written) void this.wait();
  }

  finish(last: Uint8Array): Uint8Array;
  finish(): Uint8Array | undefined;
  finish(last?: Uint8Array): Uint8Array | undefined {
    if (last !== undefined) {
      this.queue.push(last);
      this.queuedBytes += last.length;
    }
    const chunk = this.take();
    this.closed = true;
    return chunk;
  }

  discard(): void {
    this.take();
    this.closed = true;
  }

  congested(): boolean {
    return this.target.batchCongested ? this.target.batchCongested() : this.waiting !== undefined;
  }

  drained(): Promise<void> {
    if (this.waiting) return this.waiting;
    // A transport that measures its own congestion may be behind with no write of ours refused (ws's pings).
    if (this.target.batchCongested?.()) return this.wait();
    return Promise.resolve();
  }

  /** Everything queued as one chunk (a single block as is), leaving the queue empty and unscheduled. */
  private take(): Uint8Array | undefined {
    const bytes = this.queuedBytes;
    const blocks = this.takeBlocks();
    if (blocks.length === 0) return undefined;
    return blocks.length === 1 ? blocks[0]! : Buffer.concat(blocks, bytes);
  }

  /** The queued blocks (`queuedBytes` of them, read before), leaving the queue empty and unscheduled. */
  private takeBlocks(): Uint8Array[] {
    if (this.scheduled) {
      this.scheduled = false;
      dirty.delete(this);
    }
    const blocks = this.queue;
    if (blocks.length === 0) return blocks;
    this.queue = [];
    this.queuedBytes = 0;
    return blocks;
  }

  private wait(): Promise<void> {
    this.waiting ??= this.target.batchDrained().then(() => {
      this.waiting = undefined;
    });
    return this.waiting;
  }
}

/**
 * Writes `blocks` to an HTTP response as one vectored write, none of them
 * copied: the response's socket (HTTP/1.1) or stream (HTTP/2) is corked
 * around the writes, so they reach it together (one `writev`). Over HTTP/1.1
 * with chunked encoding, the response is corked too, so all blocks but the
 * last make one chunk (Node writes a corked response's writes as one chunk
 * when it is uncorked); the last is written uncorked, so its `write`'s
 * result is the socket's: false when the socket is behind, and the response
 * then emits 'drain'. Returns that result, as `res.write` does.
 */
export function writeResponseBlocks(res: HttpResponse, blocks: readonly Uint8Array[]): boolean {
  // Both response classes take a Buffer; TypeScript cannot call the union of their overloads.
  const write = res as { write(chunk: Uint8Array): boolean };
  const last = blocks.length - 1;
  let written = true;
  if (last < 0) return written;
  if ("stream" in res) return writeCorked(res.stream, write, blocks);
  const socket = res.socket;
  socket?.cork();
  res.cork();
  for (let i = 0; i < last; i++) write.write(blocks[i]!);
  res.uncork();
  written = write.write(blocks[last]!);
  socket?.uncork();
  return written;
}

/**
 * Writes `blocks` through `writer` with `stream` corked around them, so they
 * leave in one vectored write (`writev`), none copied. A corked stream still
 * counts each block in its buffered length, so the last `write`'s result is
 * its real backpressure, and it is returned. For a WebSocket's TCP socket
 * (`stream` and `writer` alike) and an HTTP/2 response (its stream corked,
 * written through the response); an HTTP/1.1 response needs
 * `writeResponseBlocks`.
 */
export function writeCorked(stream: Pick<Writable, "cork" | "uncork">, writer: { write(chunk: Uint8Array): boolean }, blocks: readonly Uint8Array[]): boolean {
  let written = true;
  stream.cork();
  for (const block of blocks) written = writer.write(block);
  stream.uncork();
  return written;
}
