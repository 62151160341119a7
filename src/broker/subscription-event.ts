import type { Entry, GapReason, Position, ReadResult } from "./broker.js";

/** What a subscriber receives: entries in log order, or a gap before them. */
export type SubscriptionEvent =
  | { readonly kind: "entry"; readonly entry: Entry }
  | {
      readonly kind: "gap";
      readonly reason: GapReason;
      /** The position the stream continues after: resume from here to skip the gap. */
      readonly position: Position;
    };

/**
 * The gap event of a read that could not start where asked (its `gap`):
 * the stream continues after the position just before the first entry returned.
 */
export function gapEvent(result: ReadResult, reason: GapReason): SubscriptionEvent {
  const resumeAfter = (result.entries[0]?.position.offset ?? result.head.offset + 1) - 1;
  return { kind: "gap", reason, position: { epoch: result.head.epoch, offset: resumeAfter } };
}

/**
 * What a subscriber too slow for the live feed gets:
 * - `lossless`: every entry in order; more than `bufferSize` undelivered live
 *   entries end the subscription with `resource_exhausted`.
 * - `conflate`: only the newest entry is kept pending; older undelivered
 *   ones are skipped, and the newest is always delivered. A conflated
 *   subscriber also gets no gaps: its next entry is simply the newest.
 */
export type SlowConsumerPolicy = "lossless" | "conflate";
