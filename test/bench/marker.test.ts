import { describe, expect, it } from "vitest";
import { createHistogram } from "../../bench/lib/histogram.js";
import { createMarkerScanner, markerLength, markerPayload, type DeliverySink } from "../../bench/lib/marker.js";

function sink(): DeliverySink {
  return { latency: createHistogram(), delivered: 0, lastAt: 0 };
}

describe("bench payload markers", () => {
  it("makes payloads of the exact size with the send time in front", () => {
    expect(markerPayload(64, 0x1234)).toBe(`~T0000000000001234~${"x".repeat(64 - markerLength)}`);
    expect(markerPayload(1024, 1).length).toBe(1024);
  });

  it("pads with a filler text when one is given, repeated or cut to the exact size", () => {
    expect(markerPayload(30, 0x1234, "ab ")).toBe("~T0000000000001234~ab ab ab ab");
    expect(markerPayload(1024, 1, "some words ").length).toBe(1024);
  });

  it("counts markers and their latency inside any framing, split across chunks anywhere", () => {
    const framed = Buffer.from(`data: {"text":"${markerPayload(40, 1000)}"}\n\n` + `\x00\x00\x00\x00\x2a${markerPayload(30, 1500)}`, "latin1");
    for (let split = 0; split <= framed.length; split++) {
      const into = sink();
      const scanner = createMarkerScanner(into);
      scanner.scan(framed.subarray(0, split), 2000);
      scanner.scan(framed.subarray(split), 2000);
      expect([split, into.delivered]).toEqual([split, 2]);
      expect(into.latency.max).toBe(1000);
      expect(into.lastAt).toBe(2000);
    }
  });

  it("reads percentiles from the log-bucket histogram within its precision", () => {
    const histogram = createHistogram();
    for (let micros = 1; micros <= 10_000; micros++) histogram.record(micros);
    expect(histogram.count).toBe(10_000);
    expect(histogram.percentile(50) / 5000).toBeCloseTo(1, 1);
    expect(histogram.percentile(99) / 9900).toBeCloseTo(1, 1);
    expect(histogram.percentile(100)).toBe(10_000);
    const copy = createHistogram(histogram.toData());
    expect(copy.percentile(99)).toBe(histogram.percentile(99));
  });
});
