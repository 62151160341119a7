import type { ConnectError } from "@connectrpc/connect";

/** setTimeout's largest delay; longer waits re-arm. */
const maxTimerDelayMs = 2 ** 31 - 1;

/**
 * Passes a stream's messages through until `deadline` (ms since the Unix
 * epoch), then ends it with `error()`. Used for token expiry and the stream
 * lifetime: both end a stream that is waiting for its next message, so the
 * wait races a timer rather than checking between messages.
 */
export async function* endStreamAt<T>(messages: AsyncIterable<T>, deadline: number, error: () => ConnectError): AsyncGenerator<T> {
  const iterator = messages[Symbol.asyncIterator]();
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_resolve, reject) => {
    const arm = () => {
      const left = deadline - Date.now();
      if (left <= 0) reject(error());
      else timer = setTimeout(arm, Math.min(left, maxTimerDelayMs));
    };
    arm();
  });
  expired.catch(() => undefined);
  let done = false;
  try {
    for (;;) {
      const result = await Promise.race([iterator.next(), expired]);
      if (result.done) {
        done = true;
        return;
      }
      yield result.value;
    }
  } finally {
    clearTimeout(timer);
    // The call's own signal (aborted when the call ends) stops the service;
    // return() releases the iterator once its pending read settles.
    if (!done) void iterator.return?.()?.catch(() => undefined);
  }
}
