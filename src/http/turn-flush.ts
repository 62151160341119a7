/** Something with queued bytes to write at the end of the event-loop turn. */
export interface Flushable {
  flush(): void;
}

/** Queues writers for one shared end-of-turn flush. */
export interface TurnFlush<W extends Flushable> {
  /** Flushes `writer` at the end of this turn, with every other writer queued in it. */
  schedule(writer: W): void;
  /** Takes `writer` off the queue (it flushed early, or closed). */
  cancel(writer: W): void;
}

/**
 * One `setImmediate` per turn for every writer of a kind: setImmediate runs
 * after this turn's I/O and promise callbacks, so every message that a broker
 * fan-out or a history replay queued by then leaves in one write per
 * connection, whatever the number of connections.
 */
export function createTurnFlush<W extends Flushable>(): TurnFlush<W> {
  const dirty = new Set<W>();
  let scheduled = false;
  const flushAll = () => {
    scheduled = false;
    const writers = [...dirty];
    dirty.clear();
    for (const writer of writers) {
      try {
        writer.flush();
      } catch (error) {
        // One writer's bug must not leave the others' bytes unwritten, nor end the process.
        process.emitWarning(error instanceof Error ? error : new Error(String(error)), "RivuletFlushWarning");
      }
    }
  };
  return {
    schedule(writer) {
      dirty.add(writer);
      if (scheduled) return;
      scheduled = true;
      setImmediate(flushAll);
    },
    cancel(writer) {
      dirty.delete(writer);
    },
  };
}
