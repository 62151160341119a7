import type { Broker, Entry, ReadFrom } from "../broker/broker.js";
import { decodeCursor, encodeCursor } from "../broker/cursor.js";
import { subscribe, type SubscriptionEvent } from "../broker/subscription.js";
import type { StreamPolicy } from "../schema/stream-policy.js";

export interface TopicStreamOptions<R> {
  readonly broker: Broker;
  readonly topic: string;
  readonly policy: StreamPolicy;
  /** Where to start: see `startOf`. */
  readonly from: ReadFrom;
  readonly bufferSize: number;
  readonly signal: AbortSignal;
  /** Turns an event into the method's response; called once per entry, whatever the subscriber count. */
  readonly toResponse: (event: SubscriptionEvent, cursor: string) => R;
  /** Shared across subscribers of one method, so a fanned-out entry is decoded once. */
  readonly cache: WeakMap<Entry, R>;
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
 */
export async function* streamTopic<R>(options: TopicStreamOptions<R>): AsyncGenerator<R> {
  const { topic, cache, toResponse } = options;
  const events = subscribe(options.broker, topic, {
    from: options.from,
    policy: options.policy.slowConsumer,
    bufferSize: options.bufferSize,
    signal: options.signal,
  });
  for await (const event of events) {
    if (event.kind === "gap") {
      yield toResponse(event, encodeCursor(topic, event.position));
      continue;
    }
    let response = cache.get(event.entry);
    if (response === undefined) {
      response = toResponse(event, encodeCursor(topic, event.entry.position));
      cache.set(event.entry, response);
    }
    yield response;
  }
}
