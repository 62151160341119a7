import type { EventEmitter } from "node:events";

/** Resolves on the stream's next 'drain' or its 'close', whichever comes first, and leaves no listener behind. */
export function drainedOrClosed(stream: EventEmitter): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      stream.off("drain", done);
      stream.off("close", done);
      resolve();
    };
    stream.on("drain", done);
    stream.on("close", done);
  });
}
