import type { Duplex } from "node:stream";
import type { WebSocket } from "ws";

/** The outgoing side of one socket: batched writes and backpressure. */
export interface WebSocketOutbox {
  /** Queues a frame; frames queued in the same event-loop turn are written together. */
  enqueue(frame: Uint8Array): void;
  /** Writes what is queued now. */
  flush(): void;
  /** Drops what is queued and takes no more (the socket is closing). */
  discard(): void;
  /** Whether more than the bound of bytes wait in the socket's buffers. */
  congested(): boolean;
  /** Resolves when the socket's buffers drain, or when it closes. */
  drained(): Promise<void>;
}

/** Queued bytes past which a batch is written at once instead of at the end of the turn. */
const flushThresholdBytes = 64 * 1024;

/**
 * Batches a socket's frames: those queued in one turn are written inside one
 * cork/uncork, so the kernel sees one write (writev) for the batch rather
 * than one per frame, the cost that dominates fan-out on loopback.
 * `maxBufferedBytes` must be at least the TCP socket's high-water mark
 * (16 KiB), so that congestion always ends with a `drain` event.
 */
export function createWebSocketOutbox(socket: WebSocket, transport: Duplex, maxBufferedBytes: number): WebSocketOutbox {
  let queue: Uint8Array[] = [];
  let queuedBytes = 0;
  let flushScheduled = false;
  let discarding = false;
  let draining: Promise<void> | undefined;

  function flush(): void {
    flushScheduled = false;
    if (queue.length === 0) return;
    const frames = queue;
    queue = [];
    queuedBytes = 0;
    if (socket.readyState !== socket.OPEN) return;
    transport.cork();
    for (const frame of frames) socket.send(frame, { binary: true });
    transport.uncork();
  }

  return {
    enqueue(frame) {
      if (discarding) return;
      queue.push(frame);
      queuedBytes += frame.length;
      if (queuedBytes >= flushThresholdBytes) flush();
      else if (!flushScheduled) {
        flushScheduled = true;
        setImmediate(flush);
      }
    },
    flush,
    discard() {
      discarding = true;
      queue = [];
      queuedBytes = 0;
    },
    // ws's bufferedAmount: bytes handed to the TCP socket but not yet taken by the kernel.
    congested: () => socket.bufferedAmount > maxBufferedBytes,
    drained() {
      draining ??= new Promise<void>((resolve) => {
        const done = () => {
          transport.off("drain", done);
          transport.off("close", done);
          draining = undefined;
          resolve();
        };
        transport.on("drain", done);
        transport.on("close", done);
      });
      return draining;
    },
  };
}
