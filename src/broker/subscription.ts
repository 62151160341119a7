import { Code, ConnectError } from "@connectrpc/connect";
import type { Broker, ReadFrom } from "./broker.js";
import { gapEvent, type SlowConsumerPolicy, type SubscriptionEvent } from "./subscription-event.js";

/**
 * How many entries a catch-up read asks for. A history request (`{ last: n }`)
 * is one read of all `n` entries, however many batches that is: the log is
 * addressed from its newest entry, so a request cut to one batch would lose
 * the oldest ones (nothing after it could say so), and `n` is bounded by the
 * method's history window. Reads after a position go one batch at a time.
 */
export function readLimit(from: ReadFrom, readBatch: number): number {
  return "last" in from ? Math.max(readBatch, from.last) : readBatch;
}

export interface SubscribeOptions {
  /** Where to start; `{ last: 0 }` is live only. */
  readonly from: ReadFrom;
  readonly policy: SlowConsumerPolicy;
  /** Most live entries held for a slow subscriber (lossless). */
  readonly bufferSize: number;
  /** Most entries fetched from the log in one read while catching up after a position. */
  readonly readBatch?: number;
  /** Ends the subscription: the iterator then throws the abort reason as a ConnectError. */
  readonly signal: AbortSignal;
}

/**
 * Subscribes to a topic: replays the log from `from`, then continues with live
 * entries, exactly once each and in order. The live feed is attached before
 * the log is read; any entry it does not hand over in sequence (a hole, a
 * new epoch) is fetched from the log instead, so no entry is lost between
 * the replay and the live part, and an epoch change mid-stream becomes a gap.
 *
 * Catch-up reads are driven by the consumer (one batch whenever its queue is
 * empty), so a subscriber far behind holds at most one batch in memory; a
 * history request is read whole at once (see `readLimit`).
 */
export function subscribe(broker: Broker, topic: string, options: SubscribeOptions): AsyncIterable<SubscriptionEvent> {
  const { policy, bufferSize, signal } = options;
  const readBatch = options.readBatch ?? 256;
  return {
    [Symbol.asyncIterator]() {
      const queue: SubscriptionEvent[] = [];
      let epoch: string | undefined;
      let last = 0;
      let started = false;
      let behind = true; // the log holds entries the queue does not
      let reading = false;
      let failure: Error | undefined;
      let wake: (() => void) | undefined;
      const notify = () => {
        const w = wake;
        wake = undefined;
        w?.();
      };

      const unlisten = broker.listen(topic, {
        entry(entry) {
          if (reading || behind || epoch === undefined) {
            behind = true;
          } else if (entry.position.epoch === epoch && entry.position.offset <= last) {
            return; // already queued or delivered
          } else if (entry.position.epoch === epoch && entry.position.offset === last + 1) {
            last = entry.position.offset;
            enqueue({ kind: "entry", entry });
          } else {
            behind = true; // a hole or a new epoch: fetch from the log
          }
          notify();
        },
        error(error) {
          failure ??= ConnectError.from(error, Code.Unavailable);
          notify();
        },
      });
      const onAbort = () => notify();
      signal.addEventListener("abort", onAbort);

      function enqueue(event: SubscriptionEvent): void {
        if (policy === "conflate") {
          queue.length = 0;
          queue.push(event);
        } else if (queue.length >= bufferSize) {
          failure ??= new ConnectError(
            "subscriber too slow: buffer full; resume from the last cursor",
            Code.ResourceExhausted,
          );
        } else {
          queue.push(event);
        }
      }

      /** Reads the log once: the start of the subscription, or catching up after a hole. */
      async function fill(): Promise<void> {
        reading = true;
        behind = false;
        try {
          if (policy === "conflate") {
            // Only the newest entry matters, and only when it is newer than what was sent.
            const after = started ? { epoch: epoch ?? "", offset: last } : "after" in options.from ? options.from.after : undefined;
            const result = await broker.read(topic, { last: 1 }, 1);
            const newest = result.entries.at(-1);
            const stale = after !== undefined && newest !== undefined && after.epoch === result.head.epoch && newest.position.offset <= after.offset;
            if (newest && !stale) enqueue({ kind: "entry", entry: newest });
            epoch = result.head.epoch;
            last = result.head.offset;
          } else {
            const from: ReadFrom = started ? { after: { epoch: epoch ?? "", offset: last } } : options.from;
            const result = await broker.read(topic, from, readLimit(from, readBatch));
            const newest = result.entries.at(-1)?.position.offset;
            if (result.gap) queue.push(gapEvent(result, result.gap));
            for (const entry of result.entries) queue.push({ kind: "entry", entry });
            epoch = result.head.epoch;
            last = newest ?? ("after" in from && !result.gap ? from.after.offset : result.head.offset);
            // Live entries that arrived during the read already set `behind`.
            if (last < result.head.offset) behind = true;
          }
          started = true;
        } finally {
          reading = false;
        }
      }

      const cleanup = () => {
        unlisten();
        signal.removeEventListener("abort", onAbort);
      };

      return {
        async next(): Promise<IteratorResult<SubscriptionEvent>> {
          try {
            while (true) {
              // Ending with the abort reason lets the caller tell a shutdown
              // (`unavailable`: reconnect elsewhere) from a finished stream.
              if (signal.aborted) throw ConnectError.from(signal.reason, Code.Canceled);
              const event = queue.shift();
              if (event) return { value: event, done: false };
              if (failure) throw failure;
              if (behind) {
                await fill();
                continue;
              }
              await new Promise<void>((resolve) => {
                wake = resolve;
              });
            }
          } catch (error) {
            cleanup();
            throw error;
          }
        },
        return(): Promise<IteratorResult<SubscriptionEvent>> {
          cleanup();
          return Promise.resolve({ value: undefined, done: true });
        },
      };
    },
  };
}
