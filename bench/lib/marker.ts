import type { Histogram } from "./histogram.js";

/**
 * Every benchmark payload starts with a marker carrying its scheduled send
 * time: `~T` + 16 hex digits of microseconds on the monotonic clock + `~`.
 * `process.hrtime` reads CLOCK_MONOTONIC, which all processes on one machine
 * share, so a receiver in another process subtracts it from its own clock.
 *
 * The marker's characters pass unchanged through every encoding on the bench
 * (Protobuf strings, proto3 JSON, SSE `data:` lines, Socket.IO's JSON, raw
 * WebSocket and HTTP/2 frames), and `~` never appears in ids, cursors (URL-safe
 * base64) or tokens, so receivers count deliveries and read latencies by
 * scanning the bytes they receive, with no per-protocol decoding at all. That
 * keeps the load generator far cheaper than the servers it measures.
 */
export const markerLength = 19;
const markerStart = Buffer.from("~T", "latin1");
const tilde = 0x7e;

/** Microseconds on the machine-wide monotonic clock. */
export function nowMicros(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/**
 * A payload of exactly `size` ASCII bytes that starts with the marker for `sentMicros`,
 * padded with `x` or, where compression is measured, with `filler` (repeated as needed; no `~`).
 */
export function markerPayload(size: number, sentMicros: number, filler?: string): string {
  const marker = `~T${Math.floor(sentMicros).toString(16).padStart(16, "0")}~`;
  const rest = Math.max(0, size - markerLength);
  return marker + (filler === undefined ? "x".repeat(rest) : filler.repeat(Math.ceil(rest / filler.length)).slice(0, rest));
}

/** What a connection's scanner reports into: shared by every connection of a load generator. */
export interface DeliverySink {
  readonly latency: Histogram;
  delivered: number;
  /** Monotonic microseconds of the latest delivery. */
  lastAt: number;
}

/** Counts markers in a byte stream that may split them across chunks. One per connection (it keeps the split tail). */
export interface MarkerScanner {
  scan(chunk: Buffer, now: number): number;
}

/** A scanner for one connection's bytes, recording into `sink`. Returns from `scan` the deliveries it found. */
export function createMarkerScanner(sink: DeliverySink): MarkerScanner {
  let carry: Buffer | undefined;
  return {
    scan(chunk, now) {
      const data = carry ? Buffer.concat([carry, chunk]) : chunk;
      carry = undefined;
      let found = 0;
      let at = data.indexOf(markerStart);
      while (at !== -1) {
        if (at + markerLength > data.length) {
          carry = Buffer.from(data.subarray(at));
          break;
        }
        let sent = 0;
        for (let i = at + 2; i < at + 18; i++) {
          const c = data[i]!;
          sent = sent * 16 + (c <= 0x39 ? c - 0x30 : c - 0x57);
        }
        sink.latency.record(now - sent);
        found++;
        at = data.indexOf(markerStart, at + markerLength);
      }
      if (carry === undefined && data.length > 0 && data[data.length - 1] === tilde) carry = Buffer.from([tilde]);
      sink.delivered += found;
      if (found > 0) sink.lastAt = now;
      return found;
    },
  };
}
