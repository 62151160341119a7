import { Code, ConnectError } from "@connectrpc/connect";
import type { ReadFrom } from "./broker.js";
import type { SlowConsumerPolicy, SubscriptionEvent } from "./subscription-event.js";
import type { HubSubscriber } from "./topic-hub.js";

/** What a buffered subscriber needs to know: where it starts, how it buffers, where its items go. */
export interface SubscriberBufferOptions<T> {
  /** Where to start; `{ last: 0 }` is live only. */
  readonly from: ReadFrom;
  readonly policy: SlowConsumerPolicy;
  /** Most live items held while the consumer is congested (lossless); one more ends the subscription. */
  readonly bufferSize: number;
  /** The item an event becomes, built as the event arrives (once per entry, whatever is skipped later). */
  readonly itemOf: (event: SubscriptionEvent) => T;
  /** Takes one item; called only while `congested()` is false. A throw fails the subscription. */
  readonly take: (item: T) => void;
  /** True while the consumer cannot take an item now. */
  readonly congested: () => boolean;
  /** Resolves once the consumer may take items again. */
  readonly drained: () => Promise<void>;
  /**
   * The subscription failed: the live feed or a read did, `take` or `itemOf`
   * threw, or a lossless buffer overflowed. The hub has dropped the
   * subscriber then, except after a `take` that threw while held items
   * drained: detach here either way. Items still held stay (`size`), for a
   * consumer that delivers them before the error; `close()` drops them.
   */
  readonly fail: (error: unknown) => void;
}

/** A hub subscriber holding what its consumer cannot take yet. */
export interface SubscriberBuffer {
  /** What to `attach` to the topic hub. */
  readonly subscriber: HubSubscriber;
  /** Items held for the consumer. */
  readonly size: number;
  /** Hands held items to the consumer while it takes them. */
  flush(): void;
  /** Takes nothing more and lets go of what it holds: the subscription ended. */
  close(): void;
}

/**
 * The slow-consumer policy between the topic hub and one consumer, for every
 * consumer there is: a connection's write queue (`sink.send`, congested while
 * its socket is) and a pulling async iterator (`subscribe()`, congested while
 * nobody waits in `next()`). Items go straight to the consumer while it takes
 * them; while it is congested, a lossless subscriber holds up to `bufferSize`
 * live items, then fails with `resource_exhausted`, and a conflated one keeps
 * only the newest.
 *
 * Catch-up items (`replay`) are always held: the hub hands over a batch only
 * once `ready()` says everything held was taken, so a subscriber far behind
 * holds at most one batch, however far behind it is. A live item is refused
 * when `bufferSize` items, of either kind, are held.
 */
export function createSubscriberBuffer<T>(options: SubscriberBufferOptions<T>): SubscriberBuffer {
  return new Buffered(options);
}

/**
 * One per stream, so a class: its methods live once on the prototype, where
 * closures would cost every idle stream a function object each (the idle
 * bench counts heap bytes per connection). It is its own hub subscriber.
 */
class Buffered<T> implements SubscriberBuffer, HubSubscriber {
  readonly from: ReadFrom;
  readonly policy: SlowConsumerPolicy;
  private pending: T[] = [];
  private waiting = false;
  private closed = false;
  /** Resolves `ready()`'s promise: the held items were all taken, or the buffer closed. */
  private emptied: (() => void) | undefined;
  private whenEmptied: Promise<void> | undefined;

  constructor(private readonly options: SubscriberBufferOptions<T>) {
    this.from = options.from;
    this.policy = options.policy;
  }

  get subscriber(): HubSubscriber {
    return this;
  }

  get size(): number {
    return this.pending.length;
  }

  event(event: SubscriptionEvent, replay: boolean): void {
    if (this.closed) return;
    const { options } = this;
    const item = options.itemOf(event);
    if (this.pending.length === 0 && !options.congested()) return options.take(item);
    if (this.policy === "conflate") {
      this.pending = [item];
    } else if (!replay && this.pending.length >= options.bufferSize) {
      // Thrown: the hub drops this subscriber and tells it through `fail`.
      throw new ConnectError("subscriber too slow: buffer full; resume from the last cursor", Code.ResourceExhausted);
    } else {
      this.pending.push(item);
    }
    this.wait();
  }

  ready(): Promise<void> | undefined {
    if (this.closed) return undefined;
    if (!this.options.congested()) this.flush();
    if (this.pending.length === 0) return undefined;
    this.wait();
    this.whenEmptied ??= new Promise<void>((resolve) => (this.emptied = resolve));
    return this.whenEmptied;
  }

  fail(error: unknown): void {
    this.options.fail(error);
  }

  flush(): void {
    this.waiting = false;
    const { options } = this;
    try {
      while (!this.closed && this.pending.length > 0) {
        if (options.congested()) return this.wait();
        options.take(this.pending.shift()!);
      }
    } catch (error) {
      // Runs from a drain callback too: a throw must end this subscription, not the process.
      options.fail(error);
      return;
    }
    if (this.pending.length === 0) this.release();
  }

  close(): void {
    this.closed = true;
    this.pending = [];
    this.release();
  }

  private wait(): void {
    if (this.waiting || this.closed) return;
    this.waiting = true;
    void this.options.drained().then(() => this.flush());
  }

  private release(): void {
    const resolve = this.emptied;
    this.emptied = undefined;
    this.whenEmptied = undefined;
    resolve?.();
  }
}
