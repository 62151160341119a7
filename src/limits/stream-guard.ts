import { Code, ConnectError, createContextKey, type Interceptor } from "@connectrpc/connect";
import type { Logger } from "../log.js";
import { endStreamAt } from "./end-stream-at.js";

/**
 * What inner interceptors may ask of the one wrapper around a call's stream:
 * an end at a deadline (token expiry, stream lifetime; the earliest wins) and
 * work to do once the call is over, however it ends.
 */
export interface StreamControls {
  /** Ends the stream with `error()` at `deadline` (ms since the Unix epoch), unless an earlier deadline is set. */
  endBy(deadline: number, error: () => ConnectError): void;
  /** Runs once when the call ends: completed, failed, cancelled, or abandoned before it was read. */
  onEnd(callback: () => void): void;
}

/** Where the stream guard puts a call's controls for the interceptors inside it. */
export const streamControlsKey = createContextKey<StreamControls | undefined>(undefined, { description: "rivulet stream controls" });

/**
 * The outermost interceptor, for every transport. It wraps a call's stream
 * once, however many concerns ask for it (token expiry, stream lifetime,
 * per-user stream counts): each wrapper is an async-generator hop per message
 * per subscriber, the hottest path of a fan-out, so there is one.
 *
 * It is also the last line of the one error path: anything thrown that is not
 * a ConnectError is a bug. It reaches the client as `internal` with the fixed
 * message "internal error" (connect-es's handlers and the bridges answer so
 * too), and the original, which nothing else would record, goes to the log.
 */
export function createStreamGuardInterceptor(logger: Logger): Interceptor {
  return (next) => async (request) => {
    let deadline = Infinity;
    let deadlineError: () => ConnectError = () => new ConnectError("deadline", Code.DeadlineExceeded);
    const callbacks: (() => void)[] = [];
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      request.signal.removeEventListener("abort", end);
      for (const callback of callbacks) callback();
    };
    // A client gone before its stream was ever read never runs the stream's
    // finally; one gone before this call even started (HTTP/2 rapid reset)
    // fires no abort event either.
    if (request.signal.aborted) end();
    else request.signal.addEventListener("abort", end, { once: true });
    request.contextValues.set(streamControlsKey, {
      endBy(at, error) {
        if (at < deadline) [deadline, deadlineError] = [at, error];
      },
      onEnd(callback) {
        if (ended) callback();
        else callbacks.push(callback);
      },
    });
    const hide = (error: unknown): unknown => {
      // A call the client abandoned ends however its work unwinds (AbortError and
      // the like): nobody reads the answer, and it is no bug worth a log line.
      if (error instanceof ConnectError || request.signal.aborted) return error;
      logger.error({ err: error, procedure: request.url }, "internal error");
      return new ConnectError("internal error", Code.Internal);
    };

    let response;
    try {
      response = await next(request);
    } catch (error) {
      end();
      throw hide(error);
    }
    if (!response.stream) {
      end();
      return response;
    }
    const messages = deadline === Infinity ? response.message : endStreamAt(response.message, deadline, deadlineError);
    return {
      ...response,
      message: (async function* () {
        try {
          yield* messages;
        } catch (error) {
          throw hide(error);
        } finally {
          end();
        }
      })(),
    };
  };
}
