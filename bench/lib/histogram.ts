/**
 * A small log-bucket latency histogram (HDR-style, about 4.4 % relative
 * precision): recording is one Math.log2 and an array increment, so the load
 * generator can record every delivery. Values are microseconds.
 * Written by hand because hdr-histogram-js is not a dependency and this needs
 * only record, merge and percentile.
 */
export interface Histogram {
  record(micros: number): void;
  /** The value at percentile `p` (0 to 100), in microseconds; 0 when empty. */
  percentile(p: number): number;
  readonly count: number;
  readonly max: number;
  merge(other: HistogramData): void;
  reset(): void;
  toData(): HistogramData;
}

/** A histogram's state, as it crosses process boundaries (IPC). */
export interface HistogramData {
  readonly counts: readonly number[];
  readonly count: number;
  readonly max: number;
}

const stepsPerDoubling = 16;
// 2^30 µs is about 18 minutes: far beyond any latency a bench step can see.
const bucketCount = 30 * stepsPerDoubling + 1;

function bucketOf(micros: number): number {
  if (micros < 1) return 0;
  return Math.min(bucketCount - 1, 1 + Math.floor(Math.log2(micros) * stepsPerDoubling));
}

function upperBoundOf(bucket: number): number {
  return bucket === 0 ? 1 : 2 ** (bucket / stepsPerDoubling);
}

/** An empty histogram, or one holding `data`. */
export function createHistogram(data?: HistogramData): Histogram {
  let counts = new Array<number>(bucketCount).fill(0);
  let count = 0;
  let max = 0;
  const histogram: Histogram = {
    record(micros) {
      counts[bucketOf(micros)]!++;
      count++;
      if (micros > max) max = micros;
    },
    percentile(p) {
      if (count === 0) return 0;
      const rank = Math.max(1, Math.ceil((p / 100) * count));
      let seen = 0;
      for (let i = 0; i < bucketCount; i++) {
        seen += counts[i]!;
        if (seen >= rank) return Math.min(upperBoundOf(i), max);
      }
      return max;
    },
    get count() {
      return count;
    },
    get max() {
      return max;
    },
    merge(other) {
      for (let i = 0; i < bucketCount; i++) counts[i]! += other.counts[i] ?? 0;
      count += other.count;
      max = Math.max(max, other.max);
    },
    reset() {
      counts = new Array<number>(bucketCount).fill(0);
      count = 0;
      max = 0;
    },
    toData: () => ({ counts: [...counts], count, max }),
  };
  if (data) histogram.merge(data);
  return histogram;
}
