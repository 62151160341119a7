import { Code, ConnectError } from "@connectrpc/connect";

/** A call's hold on its abort signal and deadline. */
export interface CallLifetime {
  /** The signal's reason when it was aborted before the call started. */
  readonly abortedBefore: ConnectError | undefined;
  /** Stops watching the signal and the deadline: the call ended. */
  release(): void;
}

/**
 * A call's abort signal and deadline, released when the call ends. `abort`
 * runs only for an abort that comes after this returns; a signal aborted
 * already shows as `abortedBefore`, so the caller never starts the call.
 */
export function callLifetime(signal: AbortSignal | undefined, timeoutMs: number | undefined, abort: (reason: ConnectError) => void): CallLifetime {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let aborted = false;
  let abortedBefore: ConnectError | undefined;
  const fire = (reason: ConnectError) => {
    if (aborted) return;
    aborted = true;
    release();
    abort(reason);
  };
  const onAbort = () => fire(ConnectError.from(signal?.reason, Code.Canceled));
  const release = () => {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
  };
  if (signal?.aborted) {
    aborted = true;
    abortedBefore = ConnectError.from(signal.reason, Code.Canceled);
  } else {
    signal?.addEventListener("abort", onAbort);
    if (timeoutMs !== undefined && timeoutMs > 0) {
      timer = setTimeout(() => fire(new ConnectError(`the call did not finish within ${timeoutMs} ms`, Code.DeadlineExceeded)), timeoutMs);
    }
  }
  return { abortedBefore, release };
}
