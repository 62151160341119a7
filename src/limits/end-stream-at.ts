import type { ConnectError } from "@connectrpc/connect";
import type { OpenCall } from "../call/open-calls.js";
import { timerAt } from "./timer-at.js";

/**
 * Passes a stream's messages through until `deadline` (ms since the Unix
 * epoch), then ends it with `error()`; or until `call` is ended from outside,
 * with its reason. Used for token expiry, the stream lifetime and withdrawn
 * access: all end a stream that is waiting for its next message, so the wait
 * races a timer (or the call's end) rather than checking between messages.
 */
export async function* endStreamAt<T>(messages: AsyncIterable<T>, deadline: number, error: () => ConnectError, call?: OpenCall): AsyncGenerator<T> {
  const iterator = messages[Symbol.asyncIterator]();
  let expired: ConnectError | undefined;
  // The wait for the current message only: racing every read against one
  // long-lived promise would pile a reaction onto it per message until the
  // deadline (a leak on a busy stream).
  let interruptWait: ((reason: ConnectError) => void) | undefined;
  const interrupt = (reason: ConnectError) => {
    expired ??= reason;
    interruptWait?.(expired);
  };
  const cancelTimer = timerAt(deadline, () => interrupt(error()));
  call?.endVia({ fail: interrupt });
  let done = false;
  try {
    for (;;) {
      if (expired) throw expired;
      const interrupted = new Promise<never>((_resolve, reject) => (interruptWait = reject));
      const result = await Promise.race([iterator.next(), interrupted]);
      interruptWait = undefined;
      if (result.done) {
        done = true;
        return;
      }
      yield result.value;
    }
  } finally {
    cancelTimer();
    // The call's own signal (aborted when the call ends) stops the service;
    // return() releases the iterator once its pending read settles.
    if (!done) void iterator.return?.()?.catch(() => undefined);
  }
}
