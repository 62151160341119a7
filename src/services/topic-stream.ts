import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import type { Message } from "@bufbuild/protobuf";
import type { Entry, ReadFrom } from "../broker/broker.js";
import { decodeCursor, encodeCursor, encodeEntryCursor } from "../broker/cursor.js";
import { createSubscriberBuffer, type SubscriberBuffer, type SubscriberBufferOptions } from "../broker/subscriber-buffer.js";
import { subscribe } from "../broker/subscription.js";
import type { SlowConsumerPolicy, SubscriptionEvent } from "../broker/subscription-event.js";
import type { HubMembership, TopicHub } from "../broker/topic-hub.js";
import type { StreamPolicy } from "../wire/stream-policy.js";
import { streamControlsKey, type StreamLease } from "../call/stream-controls.js";
import { responseSinkKey, type DetachedStream, type ResponseSink } from "../call/response-sink.js";
import { maxTimerDelayMs } from "../limits/timer-at.js";

export interface TopicStreamOptions<R extends Message> {
  /** The shared per-topic feeds, which every stream joins. */
  readonly hub: TopicHub;
  readonly topic: string;
  readonly policy: StreamPolicy;
  /** Where to start: see `startOf`. */
  readonly from: ReadFrom;
  readonly bufferSize: number;
  /** The call: its signal ends the stream, and its `responseSinkKey` value, if any, takes the responses. */
  readonly context: HandlerContext;
  /** Turns an event into the method's response; called once per entry, whatever the subscriber count. */
  readonly toResponse: (event: SubscriptionEvent, cursor: string) => R;
  /** Shared across subscribers of one method, so a fanned-out entry is decoded once. */
  readonly cache: WeakMap<Entry, R>;
  /** The stream completes after the first response for which this is true (a finished job or completion). */
  readonly until?: (response: R) => boolean;
  /**
   * Responses besides the log's, live only (a chat room's signals): called
   * once when the stream starts, it calls `deliver` with each and returns the
   * function that stops them, called once however the stream ends. They have
   * no position and are never stored or replayed: each goes out only if the
   * consumer can take it at once (nothing of the log's held, not congested)
   * and is dropped otherwise, so a slow stream loses them and nothing is held
   * for them. `until` does not look at them.
   */
  readonly ephemeral?: (deliver: (response: R) => void) => () => void;
  /**
   * False when the handler must keep running while the stream does (it does
   * work of its own around `yield*`, as completions watch for a stalled
   * generator); otherwise a stream with a sink detaches from its handler.
   */
  readonly detachable?: boolean;
}

/** Where a stream starts, from the request's cursor or history count. Throws invalid_argument for a bad cursor. */
export function startOf(topic: string, cursor: string, history: number, policy: StreamPolicy): ReadFrom {
  if (cursor !== "") return { after: decodeCursor(topic, cursor) };
  return { last: Math.min(history, policy.historyWindow) };
}

/**
 * Streams a topic as a method's responses. Each entry's response is built once
 * and shared by every subscriber (the bridges then encode it once too);
 * gap events are per subscriber.
 *
 * Both paths join the topic's shared feed, with the same slow-consumer
 * buffer, so they give the same responses in the same order: a call whose
 * transport takes responses directly (a `ResponseSink` in its context) is fed
 * synchronously and yields nothing, ending when the stream does; any other
 * call (connect-node's handlers) pulls its subscription (`subscribe()`)
 * through this generator.
 */
export async function* streamTopic<R extends Message>(options: TopicStreamOptions<R>): AsyncGenerator<R> {
  const { context } = options;
  const sink = context.values.get(responseSinkKey);
  const controls = context.values.get(streamControlsKey);
  if (sink && controls && options.detachable !== false) {
    // The stream guard's deadline and end-of-call work move to the stream itself,
    // and the handler returns: nothing of the call's setup stays in memory.
    const lease = controls.handOver();
    const timeoutMs = context.timeoutMs();
    const timeoutAt = timeoutMs === undefined ? Infinity : Date.now() + timeoutMs;
    const stream = new SinkStream(options, sink, sink, lease, timeoutAt);
    sink.detach(stream);
    // Aborted before it detached: the transport's cancel went to the signal, which the stream no longer watches.
    if (sink.signal.aborted) stream.cancel(sink.signal.reason);
    else stream.start(options.hub, options.topic);
    return;
  }
  if (sink) {
    await streamToSink(options, sink, context.signal);
    return;
  }
  const events = subscribe(options.hub, options.topic, {
    from: options.from,
    policy: options.policy.slowConsumer,
    bufferSize: options.bufferSize,
    signal: options.context.signal,
  });
  const respond = responder(options);
  if (!options.ephemeral) {
    for await (const event of events) {
      const response = respond(event);
      yield response;
      if (options.until?.(response)) return;
    }
    return;
  }
  // With ephemeral responses: the consumer is waiting while this generator awaits the
  // subscription; one comes through only then, and is dropped while the consumer is
  // not waiting (this generator suspended at `yield`), the pull path's congestion.
  const iterator = events[Symbol.asyncIterator]();
  let offered: R | undefined;
  let wake: (() => void) | undefined;
  const stop = options.ephemeral((response) => {
    if (wake === undefined || offered !== undefined) return;
    offered = response;
    wake();
  });
  try {
    let next: Promise<IteratorResult<SubscriptionEvent>> | undefined;
    for (;;) {
      if (next === undefined) {
        next = iterator.next();
        // Awaited below, unless the consumer leaves while an ephemeral response is out: then nobody does.
        next.catch(() => undefined);
      }
      await Promise.race([next, new Promise<void>((resolve) => (wake = resolve))]);
      wake = undefined;
      if (offered !== undefined) {
        const response = offered;
        offered = undefined;
        yield response;
        continue;
      }
      const result = await next;
      next = undefined;
      if (result.done) return;
      const response = respond(result.value);
      yield response;
      if (options.until?.(response)) return;
    }
  } finally {
    stop();
    await iterator.return?.();
  }
}

/** The response for an event: built once per entry and method, per subscriber for gaps. */
function responder<R extends Message>(options: TopicStreamOptions<R>): (event: SubscriptionEvent) => R {
  const { topic, cache, toResponse } = options;
  return (event) => responseOf(topic, cache, toResponse, event);
}

function responseOf<R extends Message>(
  topic: string,
  cache: WeakMap<Entry, R>,
  toResponse: (event: SubscriptionEvent, cursor: string) => R,
  event: SubscriptionEvent,
): R {
  if (event.kind === "gap") return toResponse(event, encodeCursor(topic, event.position));
  let response = cache.get(event.entry);
  if (response === undefined) {
    response = toResponse(event, encodeEntryCursor(topic, event.entry));
    cache.set(event.entry, response);
  }
  return response;
}

/** Who learns that a sink stream ended: the sink itself once detached, or the handler awaiting it. */
interface StreamOwner {
  end(error?: unknown): void;
}

/**
 * Feeds one call's sink while its handler waits (a stream that must not
 * detach, or a call without the stream guard): resolves when the stream
 * completes (`until`), rejects when it fails or `signal` aborts.
 */
function streamToSink<R extends Message>(options: TopicStreamOptions<R>, sink: ResponseSink, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal.aborted) return reject(ConnectError.from(signal.reason, Code.Canceled));
    const owner: StreamOwner = {
      end(error) {
        signal.removeEventListener("abort", onAbort);
        if (error === undefined) resolve();
        else reject(error);
      },
    };
    const stream = new SinkStream(options, sink, owner, undefined, Infinity);
    const onAbort = () => stream.cancel(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    stream.start(options.hub, options.topic);
  });
}

/** A sink stream's deadline timer fired (setTimeout's argument, so no closure per stream). */
function deadlineReached(stream: { deadlineReached(): void }): void {
  stream.deadlineReached();
}

/**
 * One stream feeding its call's sink, and the consumer of its slow-consumer
 * buffer: while the connection is congested, lossless streams hold up to
 * `bufferSize` responses and then end with `resource_exhausted` at once
 * (what they hold is dropped); conflated streams keep only the newest.
 *
 * What an idle detached subscription keeps is this object, its buffer, its
 * membership in the topic (`HubMembership`), its lease and, with a finite
 * deadline, one timer: a class, with every callback a method on the
 * prototype or a shared function, because every open stream has one. What
 * it keeps is named field by field: nothing here may hold `options`, whose
 * `context` is the call's whole handler context.
 */
class SinkStream<R extends Message> implements SubscriberBufferOptions<R>, DetachedStream {
  readonly from: ReadFrom;
  readonly policy: SlowConsumerPolicy;
  readonly bufferSize: number;
  private readonly topic: string;
  private readonly cache: WeakMap<Entry, R>;
  private readonly toResponse: (event: SubscriptionEvent, cursor: string) => R;
  private readonly until: ((response: R) => boolean) | undefined;
  private readonly ephemeral: ((deliver: (response: R) => void) => () => void) | undefined;
  private readonly buffer: SubscriberBuffer;
  /** When the stream must end, and with what (the lease's deadline or the client's timeout, whichever is first). */
  private readonly endsAt: number;
  private timer: NodeJS.Timeout | undefined;
  /** The hub membership once attached; `finish` may run before (an aborted call). */
  private membership: HubMembership | undefined;
  /** Stops the ephemeral responses once started. */
  private stopEphemeral: (() => void) | undefined;
  private done = false;

  constructor(
    options: TopicStreamOptions<R>,
    private readonly sink: ResponseSink,
    private readonly owner: StreamOwner,
    /** The end of the call, handed over from the stream guard; undefined while the handler still runs the call. */
    private readonly lease: StreamLease | undefined,
    /** The client's own deadline (a timeout header), or Infinity. */
    private readonly timeoutAt: number,
  ) {
    this.from = options.from;
    this.policy = options.policy.slowConsumer;
    this.bufferSize = options.bufferSize;
    this.topic = options.topic;
    this.cache = options.cache;
    this.toResponse = options.toResponse;
    this.until = options.until;
    this.ephemeral = options.ephemeral;
    this.endsAt = Math.min(timeoutAt, lease?.deadline ?? Infinity);
    this.buffer = createSubscriberBuffer<R>(this);
  }

  start(hub: TopicHub, topic: string): void {
    if (this.endsAt !== Infinity) {
      this.armTimer();
      if (this.done) return;
    }
    // Ended from outside (withdrawn access, the server API's Disconnect) through the call's entry in the open calls.
    this.lease?.call?.endVia(this);
    if (this.done) return;
    const membership = hub.attach(topic, this.buffer.subscriber);
    if (this.done) return membership.detach();
    this.membership = membership;
    if (this.ephemeral) this.stopEphemeral = this.ephemeral((response) => this.offer(response));
  }

  /** Arms the deadline timer, in steps past setTimeout's range; ends the stream if the deadline has passed. */
  private armTimer(): void {
    const left = this.endsAt - Date.now();
    if (left <= 0) return this.deadlineReached();
    this.timer = setTimeout(deadlineReached, Math.min(left, maxTimerDelayMs), this).unref();
  }

  /** @internal the deadline timer's callback. */
  deadlineReached(): void {
    this.timer = undefined;
    if (this.done) return;
    if (this.endsAt > Date.now()) return this.armTimer();
    this.finish(this.timeoutAt <= this.endsAt || !this.lease ? new ConnectError("the operation timed out", Code.DeadlineExceeded) : this.lease.deadlineError());
  }

  /** The transport ended the call (DetachedStream), or its signal aborted: ending with the reason lets the caller tell a shutdown (`unavailable`) from a finished stream. */
  cancel(reason: unknown): void {
    this.finish(ConnectError.from(reason, Code.Canceled));
  }

  /** An ephemeral response: sent only if the connection takes it now, behind nothing held; else dropped. */
  private offer(response: R): void {
    if (this.done || this.buffer.size > 0 || this.sink.congested()) return;
    try {
      this.sink.send(response);
    } catch (error) {
      // Called from the broker's signal feed: a failed send ends this stream, not the sender's call.
      this.fail(error);
    }
  }

  itemOf(event: SubscriptionEvent): R {
    return responseOf(this.topic, this.cache, this.toResponse, event);
  }

  take(response: R): void {
    this.sink.send(response);
    if (this.until?.(response)) this.finish(undefined);
  }

  congested(): boolean {
    return this.sink.congested();
  }

  drained(): Promise<void> {
    return this.sink.drained();
  }

  fail(error: unknown): void {
    this.finish(error);
  }

  private finish(error: unknown): void {
    if (this.done) return;
    this.done = true;
    this.buffer.close();
    this.membership?.detach();
    this.stopEphemeral?.();
    clearTimeout(this.timer);
    this.lease?.release();
    this.owner.end(error);
  }
}
