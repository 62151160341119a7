import { Code, ConnectError } from "@connectrpc/connect";
import type { ReadFrom } from "./broker.js";
import { createSubscriberBuffer } from "./subscriber-buffer.js";
import type { SlowConsumerPolicy, SubscriptionEvent } from "./subscription-event.js";
import type { HubMembership, TopicHub } from "./topic-hub.js";

export interface SubscribeOptions {
  /** Where to start; `{ last: 0 }` is live only. */
  readonly from: ReadFrom;
  readonly policy: SlowConsumerPolicy;
  /** Most live entries held for a slow subscriber (lossless). */
  readonly bufferSize: number;
  /** Ends the subscription: the iterator then throws the abort reason as a ConnectError. */
  readonly signal: AbortSignal;
}

interface Reader {
  resolve(result: IteratorResult<SubscriptionEvent>): void;
  reject(error: unknown): void;
}

/**
 * A topic hub subscription as an async iterable, for consumers that pull
 * (connect-node's handlers, a service watching a topic): the log from
 * `from`, then live entries, exactly once each and in order (see topic-hub.ts).
 *
 * The subscription is attached when iteration starts and detached by
 * `return()` (leaving a `for await` loop) or when it ends. The consumer is
 * congested whenever it is not waiting in `next()`; events meanwhile wait in
 * `createSubscriberBuffer`'s queue, with its slow-consumer policy. A catch-up
 * batch is read only once the consumer has taken the previous one, so a
 * subscriber far behind holds at most one batch in memory. Events held when
 * the subscription fails (a lossless buffer overflowed, the broker went
 * away) are still delivered before the error.
 */
export function subscribe(hub: TopicHub, topic: string, options: SubscribeOptions): AsyncIterable<SubscriptionEvent> {
  const { signal } = options;
  return {
    [Symbol.asyncIterator]() {
      let reader: Reader | undefined;
      /** Resolves `drained()`: the consumer called `next()`. */
      let pulled: (() => void) | undefined;
      let whenPulled: Promise<void> | undefined;
      let failure: unknown;
      let failed = false;
      let returned = false;

      const buffer = createSubscriberBuffer<SubscriptionEvent>({
        from: options.from,
        policy: options.policy,
        bufferSize: options.bufferSize,
        itemOf: (event) => event,
        take(event) {
          const waiting = reader;
          reader = undefined;
          waiting?.resolve({ value: event, done: false });
        },
        congested: () => reader === undefined,
        drained: () => (whenPulled ??= new Promise<void>((resolve) => (pulled = resolve))),
        fail(error) {
          if (failed) return;
          failed = true;
          failure = error;
          stop();
          // Nothing held (a waiting reader means so): the error is the next thing to deliver.
          const waiting = reader;
          reader = undefined;
          waiting?.reject(error);
        },
      });
      // Assigned after attach returns: a subscriber that fails inside attach stops with nothing to detach yet.
      let membership: HubMembership | undefined = undefined;
      // Ending with the abort reason lets the caller tell a shutdown
      // (`unavailable`: reconnect elsewhere) from a finished stream.
      const aborted = () => ConnectError.from(signal.reason, Code.Canceled);
      const onAbort = () => {
        end();
        const waiting = reader;
        reader = undefined;
        waiting?.reject(aborted());
      };
      signal.addEventListener("abort", onAbort, { once: true });
      membership = hub.attach(topic, buffer.subscriber);
      function stop(): void {
        membership?.detach();
        signal.removeEventListener("abort", onAbort);
      }
      function end(): void {
        stop();
        buffer.close();
      }

      return {
        next(): Promise<IteratorResult<SubscriptionEvent>> {
          if (signal.aborted) {
            end();
            return Promise.reject(aborted());
          }
          if (returned) return Promise.resolve({ value: undefined, done: true });
          if (failed && buffer.size === 0) return Promise.reject(failure);
          return new Promise((resolve, reject) => {
            reader = { resolve, reject };
            const wake = pulled;
            pulled = undefined;
            whenPulled = undefined;
            wake?.();
            buffer.flush();
          });
        },
        return(): Promise<IteratorResult<SubscriptionEvent>> {
          returned = true;
          end();
          return Promise.resolve({ value: undefined, done: true });
        },
      };
    },
  };
}
