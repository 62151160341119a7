import { createContextKey } from "@connectrpc/connect";
import type { Message } from "@bufbuild/protobuf";

/**
 * Where a transport that writes its own frames (the SSE and WebSocket bridges,
 * the Connect/gRPC stream writer) takes a call's responses directly, instead
 * of pulling them through the call's async iterator. A topic stream that finds
 * one in its context (`responseSinkKey`) attaches the call to the topic's
 * shared feed and hands every response to `send` synchronously: a fanned-out
 * message then costs one function call per subscriber, not a chain of promise
 * hops, and lands in the connection's write queue in the same turn.
 *
 * The call's iterator still ends the call: it yields nothing and finishes (or
 * throws) when the stream does, after the last `send`.
 */
export interface ResponseSink {
  /** Queues one response for the client. Never called after the call ended. */
  send(response: Message): void;
  /** Whether the connection's buffers are full: responses then wait (lossless) or are conflated. */
  congested(): boolean;
  /** Resolves when the connection drains, or when the call ends. */
  drained(): Promise<void>;
  /** Aborted when the call ends on the transport's side: the client cancelled or went away, or the server shuts down. */
  readonly signal: AbortSignal;
  /**
   * Called instead of yielding when a stream outlives its handler: the call's
   * iterator then ends at once (freeing the handler, its context and the
   * interceptors' wrappers, which is most of an idle stream's memory), and
   * the transport ends the call when `ended` settles: completed, or with its
   * error. Called at most once, before the iterator ends.
   */
  detach(ended: Promise<void>): void;
}

/** The context value a transport sets to take responses directly. */
export const responseSinkKey = createContextKey<ResponseSink | undefined>(undefined, { description: "rivulet response sink" });
