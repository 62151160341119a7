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
 * The call's iterator still ends the call, unless the stream detaches: it
 * yields nothing and finishes (or throws) when the stream does, after the
 * last `send`.
 */
export interface ResponseSink {
  /** Queues one response for the client. Never called after the call ended. */
  send(response: Message): void;
  /** Whether the connection's buffers are full: responses then wait (lossless) or are conflated. */
  congested(): boolean;
  /** Resolves when the connection drains, or when the call ends. */
  drained(): Promise<void>;
  /** Aborted when the call ends on the transport's side (the client cancelled or went away, the server shuts down), until the stream detaches. */
  readonly signal: AbortSignal;
  /**
   * Called instead of yielding when a stream outlives its handler: the call's
   * iterator then ends at once, freeing the handler, its context and the
   * interceptors' wrappers, which is most of an idle stream's memory. From
   * then on the two sides tell each other directly, with no promise or
   * signal listener held per stream: the transport calls `stream.cancel(reason)`
   * when the call ends on its side (the stream no longer watches `signal`),
   * and the stream calls `end` once when it ends. Called at most once, before
   * the iterator ends.
   */
  detach(stream: DetachedStream): void;
  /** The detached stream ended: completed (no argument) or failed with `error`. Called once, and only after `detach`. */
  end(error?: unknown): void;
}

/** A stream that outlived its handler, as its transport sees it (`ResponseSink.detach`). */
export interface DetachedStream {
  /** The call ended on the transport's side: the stream stops and calls the sink's `end` with `reason` as a ConnectError (canceled unless it is one). */
  cancel(reason: unknown): void;
}

/** The context value a transport sets to take responses directly. */
export const responseSinkKey = createContextKey<ResponseSink | undefined>(undefined, { description: "rivulet response sink" });
