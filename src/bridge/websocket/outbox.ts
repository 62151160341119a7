import type { Duplex } from "node:stream";
import type { WebSocket } from "ws";
import { createBatchedWriter, writeCorked, type BatchedWriter, type WriteTarget } from "../../http/batched-writer.js";
import { drainedOrClosed } from "../../http/drained.js";

/**
 * The outgoing side of one socket: a batched writer straight to the TCP (or
 * TLS) socket under `socket`, so the messages queued in one turn reach the
 * kernel in one write. Messages arrive framed (`webSocketBinaryFrame`,
 * compressed when the socket negotiated `deflate`), not through ws's `send`:
 * a fanned-out message is framed once for all sockets. ws still writes its
 * own control frames (ping, close, never compressed) to the same socket;
 * both write synchronously, so frames never interleave.
 *
 * What differs from the other transports' writers: bytes are written only
 * while the socket is OPEN (after a close frame nothing may follow, RFC 6455
 * §5.5.1), and congestion is ws's `bufferedAmount` (bytes handed to the TCP
 * socket, by ws or by the writer, not yet taken by the kernel) past
 * `maxBufferedBytes`. That bound must be at least the TCP socket's high-water
 * mark (64 KiB since Node 22), so that congestion always ends with a `drain`
 * event.
 */
export function createWebSocketOutbox(socket: WebSocket, transport: Duplex, maxBufferedBytes: number): BatchedWriter {
  return createBatchedWriter(new SocketTarget(socket, transport, maxBufferedBytes), socket);
}

/** The socket as the batched writer's target: one object per socket, its methods on the prototype. */
class SocketTarget implements WriteTarget {
  constructor(
    private readonly socket: WebSocket,
    private readonly transport: Duplex,
    private readonly maxBufferedBytes: number,
  ) {}

  writeBatch(chunk: Uint8Array): boolean {
    return this.transport.write(chunk);
  }

  /** A batch of large frames (1 KiB messages) as one vectored write of the shared frame Buffers, not joined into a new Buffer per socket. */
  writeBlocks(blocks: readonly Uint8Array[]): boolean {
    return writeCorked(this.transport, this.transport, blocks);
  }

  batchDrained(): Promise<void> {
    return drainedOrClosed(this.transport);
  }

  batchOpen(): boolean {
    return this.socket.readyState === this.socket.OPEN;
  }

  batchCongested(): boolean {
    return this.socket.bufferedAmount > this.maxBufferedBytes;
  }
}
