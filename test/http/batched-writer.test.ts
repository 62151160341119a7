import { EventEmitter } from "node:events";
import { describe, expect, it } from "vitest";
import { createBatchedWriter, flushThresholdBytes, vectorMinBlockBytes, type WriteTarget } from "../../src/http/batched-writer.js";

/** A target that records every chunk written to it and says "behind" while `full`; `drain()` catches it up. */
interface RecordingTarget extends WriteTarget {
  readonly chunks: Uint8Array[];
  full: boolean;
  drain(): void;
}

function recordingTarget(): RecordingTarget {
  let resolveDrain: (() => void) | undefined;
  const target: RecordingTarget = {
    chunks: [],
    full: false,
    writeBatch(chunk) {
      target.chunks.push(chunk);
      return !target.full;
    },
    batchDrained: () => new Promise<void>((resolve) => (resolveDrain = resolve)),
    drain() {
      target.full = false;
      resolveDrain?.();
    },
  };
  return target;
}

/** The end of this event-loop turn: setImmediate callbacks run in order, so the writers' shared flush has run by then. */
const endOfTurn = () => new Promise<void>((resolve) => setImmediate(resolve));
const text = (chunk: Uint8Array | undefined) => Buffer.from(chunk ?? []).toString();

/** A writer on `target`, with the target's own open and congestion signals when given. */
function writerOn(target: WriteTarget, signals: { open?: () => boolean; congested?: () => boolean } = {}) {
  const stream = new EventEmitter();
  const withSignals: WriteTarget = Object.assign(target, { batchOpen: signals.open, batchCongested: signals.congested });
  return { stream, writer: createBatchedWriter(withSignals, stream) };
}

describe("batched writer", () => {
  it("writes the blocks queued in one turn in one write at its end", async () => {
    const target = recordingTarget();
    const { writer } = writerOn(target);
    writer.write(Buffer.from("a"));
    writer.write(Buffer.from("b"));
    writer.write(Buffer.from("c"));
    expect(target.chunks).toEqual([]);
    await endOfTurn();
    expect(target.chunks.map(text)).toEqual(["abc"]);
    expect(writer.writtenBytes).toBe(3);
  });

  it("writes a single block as is, not a copy", async () => {
    const target = recordingTarget();
    const { writer } = writerOn(target);
    const shared = Buffer.from("fanned out");
    writer.write(shared);
    await endOfTurn();
    expect(target.chunks[0]).toBe(shared);
  });

  it("flushes every writer of the turn with one shared end-of-turn flush", async () => {
    const targets = [recordingTarget(), recordingTarget(), recordingTarget()];
    const writers = targets.map((target) => writerOn(target).writer);
    writers.forEach((writer, i) => writer.write(Buffer.from(`w${i}`)));
    await endOfTurn();
    expect(targets.map((target) => target.chunks.map(text))).toEqual([["w0"], ["w1"], ["w2"]]);
  });

  it("hands a batch of large blocks to a target that takes a vector as they are, and joins a batch of small ones", async () => {
    const vectors: Uint8Array[][] = [];
    const target = Object.assign(recordingTarget(), {
      writeBlocks(blocks: readonly Uint8Array[]) {
        vectors.push([...blocks]);
        return true;
      },
    });
    const { writer } = writerOn(target);
    const large = [Buffer.alloc(vectorMinBlockBytes, "a"), Buffer.alloc(vectorMinBlockBytes + 10, "b"), Buffer.alloc(vectorMinBlockBytes - 10, "c")];
    for (const block of large) writer.write(block);
    await endOfTurn();
    expect(vectors).toHaveLength(1);
    expect(vectors[0]!.every((block, i) => block === large[i])).toBe(true);
    expect(target.chunks).toEqual([]);
    writer.write(Buffer.alloc(vectorMinBlockBytes, "d"));
    writer.write(Buffer.from("small"));
    await endOfTurn();
    expect(vectors).toHaveLength(1);
    expect(target.chunks.map(text)).toEqual(["d".repeat(vectorMinBlockBytes) + "small"]);
    expect(writer.writtenBytes).toBe(3 * vectorMinBlockBytes + vectorMinBlockBytes + 5);
  });

  it("writes at once when the queue reaches the threshold", () => {
    const target = recordingTarget();
    const { writer } = writerOn(target);
    writer.write(Buffer.alloc(flushThresholdBytes - 1));
    expect(target.chunks).toHaveLength(0);
    writer.write(Buffer.alloc(1));
    expect(target.chunks.map((chunk) => chunk.length)).toEqual([flushThresholdBytes]);
  });

  it("takes back a block still queued, not one already written", async () => {
    const target = recordingTarget();
    const { writer } = writerOn(target);
    const first = Buffer.from("1");
    writer.write(first);
    writer.flush();
    const second = Buffer.from("2");
    writer.write(Buffer.from(":"));
    writer.write(second);
    writer.withdraw(first);
    writer.withdraw(second);
    writer.write(Buffer.from("3"));
    await endOfTurn();
    expect(target.chunks.map(text)).toEqual(["1", ":3"]);
  });

  it("is congested from a refused write until the target drains; drained() resolves at once otherwise", async () => {
    const target = recordingTarget();
    const { writer } = writerOn(target);
    await writer.drained();
    target.full = true;
    writer.write(Buffer.from("x"));
    writer.flush();
    expect(writer.congested()).toBe(true);
    const drained = writer.drained();
    expect(writer.drained()).toBe(drained);
    target.drain();
    await drained;
    expect(writer.congested()).toBe(false);
  });

  it("takes congestion from the transport when told, and waits for its drain", async () => {
    const target = recordingTarget();
    let buffered = 0;
    const { writer } = writerOn(target, { congested: () => buffered > 10 });
    target.full = true;
    writer.write(Buffer.from("refused, but under the bound"));
    writer.flush();
    expect(writer.congested()).toBe(false);
    target.drain();
    await writer.drained();
    buffered = 11;
    expect(writer.congested()).toBe(true);
    const drained = writer.drained();
    buffered = 0;
    target.drain();
    await drained;
  });

  it("drops what is queued when the target no longer takes bytes, counting nothing", async () => {
    const target = recordingTarget();
    let open = true;
    const { writer } = writerOn(target, { open: () => open });
    writer.write(Buffer.from("before"));
    writer.flush();
    open = false;
    writer.write(Buffer.from("after"));
    await endOfTurn();
    expect(target.chunks.map(text)).toEqual(["before"]);
    expect(writer.writtenBytes).toBe(6);
  });

  it("finishes with what is queued and the last block as one chunk, then takes no more", async () => {
    const target = recordingTarget();
    const { writer } = writerOn(target);
    writer.write(Buffer.from("a"));
    writer.write(Buffer.from("b"));
    expect(text(writer.finish(Buffer.from("end")))).toBe("abend");
    expect(writer.closed).toBe(true);
    writer.write(Buffer.from("late"));
    await endOfTurn();
    expect(target.chunks).toEqual([]);
    expect(writerOn(target).writer.finish()).toBeUndefined();
  });

  it("ignores its stream's errors and discards its queue when the stream closes", async () => {
    const target = recordingTarget();
    const { stream, writer } = writerOn(target);
    writer.write(Buffer.from("queued"));
    // Without a listener an 'error' event would throw.
    stream.emit("error", new Error("EPIPE"));
    stream.emit("close");
    expect(writer.closed).toBe(true);
    writer.write(Buffer.from("late"));
    await endOfTurn();
    expect(target.chunks).toEqual([]);
  });

  it("discards on request", async () => {
    const target = recordingTarget();
    const { writer } = writerOn(target);
    writer.write(Buffer.from("queued"));
    writer.discard();
    writer.flush();
    await endOfTurn();
    expect(target.chunks).toEqual([]);
  });
});
