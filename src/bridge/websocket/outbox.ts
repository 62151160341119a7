import type { Duplex } from "node:stream";
import type { WebSocket } from "ws";
import { drainedOrClosed } from "../../http/drained.js";
import { createTurnFlush, type Flushable } from "../../http/turn-flush.js";
import { outgoingFrame, type WebSocketDeflate } from "./deflate.js";

/** The outgoing side of one socket: batched writes and backpressure. */
export interface WebSocketOutbox {
  /** Queues a `ServerFrame`; frames queued in the same event-loop turn are written together. */
  enqueue(frame: Uint8Array): void;
  /** Queues a whole WebSocket message already framed for the wire (`outgoingFrame`), shared by many sockets. */
  enqueueWire(message: Buffer): void;
  /** Writes what is queued now. */
  flush(): void;
  /** Drops what is queued and takes no more (the socket is closing). */
  discard(): void;
  /** Whether more than the bound of bytes wait in the socket's buffers. */
  congested(): boolean;
  /** Resolves when the socket's buffers drain, or when it closes. */
  drained(): Promise<void>;
  /** Bytes of frames written to the socket so far (liveness: whether anything was sent to the peer lately). */
  readonly writtenBytes: number;
}

/** Sockets with messages waiting for the end of the turn: one setImmediate for all of them. */
const turn = createTurnFlush<Flushable>();

/** Queued bytes past which a batch is written at once instead of at the end of the turn. */
const flushThresholdBytes = 64 * 1024;

/**
 * Batches a socket's messages: those queued in one turn go to the TCP socket
 * in one write, so the kernel sees one system call for the batch rather than
 * one per message, the cost that dominates fan-out on loopback. Messages are
 * framed (and compressed, when the socket negotiated `deflate`) here, not by
 * ws's `send`: a fanned-out message arrives framed once for all sockets. ws
 * still writes its own control frames (ping, close, never compressed) to the
 * same socket; both write synchronously, so frames never interleave. `maxBufferedBytes` must be at least the TCP
 * socket's high-water mark (64 KiB since Node 22), so that congestion always ends with a
 * `drain` event.
 */
export function createWebSocketOutbox(
  socket: WebSocket,
  transport: Duplex,
  maxBufferedBytes: number,
  deflate: WebSocketDeflate | undefined,
): WebSocketOutbox {
  let queue: Buffer[] = [];
  let queuedBytes = 0;
  let discarding = false;
  let draining: Promise<void> | undefined;
  let writtenBytes = 0;

  function flush(): void {
    if (queue.length === 0) return;
    const messages = queue;
    const bytes = queuedBytes;
    queue = [];
    queuedBytes = 0;
    if (socket.readyState !== socket.OPEN) return;
    writtenBytes += bytes;
    transport.write(messages.length === 1 ? messages[0]! : Buffer.concat(messages, bytes));
  }

  function enqueueWire(message: Buffer): void {
    if (discarding) return;
    queue.push(message);
    queuedBytes += message.length;
    if (queuedBytes >= flushThresholdBytes) flush();
    else turn.schedule(flushable);
  }
  const flushable = { flush };

  return {
    enqueue: (frame) => enqueueWire(outgoingFrame(frame, deflate)),
    enqueueWire,
    flush,
    discard() {
      discarding = true;
      turn.cancel(flushable);
      queue = [];
      queuedBytes = 0;
    },
    // ws's bufferedAmount: bytes handed to the TCP socket (by ws or by flush) but not yet taken by the kernel.
    congested: () => socket.bufferedAmount > maxBufferedBytes,
    drained() {
      draining ??= drainedOrClosed(transport).then(() => {
        draining = undefined;
      });
      return draining;
    },
    get writtenBytes() {
      return writtenBytes;
    },
  };
}
