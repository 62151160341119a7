import { Code, ConnectError, createContextKey, type Interceptor } from "@connectrpc/connect";
import { redactUrl, type Logger } from "../log.js";
import { endStreamAt } from "./end-stream-at.js";

/**
 * What inner interceptors may ask of the one wrapper around a call's stream:
 * an end at a deadline (token expiry, stream lifetime; the earliest wins) and
 * work to do once the call is over, however it ends.
 */
export interface StreamControls {
  /** Ends the stream with ConnectError(`message`, `code`) at `deadline` (ms since the Unix epoch), unless an earlier deadline is set. */
  endBy(deadline: number, code: Code, message: string): void;
  /** Runs once when the call ends: completed, failed, cancelled, or abandoned before it was read. */
  onEnd(callback: () => void): void;
  /**
   * Hands the end of the call over to a stream that outlives its handler (a
   * topic stream writing to its transport's `ResponseSink`): the guard then
   * neither ends the stream at the deadline nor runs the `onEnd` callbacks
   * when the handler returns; the lease's holder does both, once.
   */
  handOver(): StreamLease;
}

/**
 * The end of a call, taken over from the stream guard (`StreamControls.handOver`).
 * Plain data and the end-of-call callbacks only: a lease outlives the call's
 * setup, so it must not hold (through closures) the interceptors' requests,
 * the handler context or the finished iterator chain.
 */
export interface StreamLease {
  /** When the stream must end (ms since the Unix epoch; Infinity for never), with `deadlineError()`. */
  readonly deadline: number;
  deadlineError(): ConnectError;
  /** Runs the call's end-of-call work (per-user stream counts); call it once when the stream ends. */
  release(): void;
}

/** Built outside the interceptor's per-call scope, so its closures keep only what they name. */
function createLease(deadline: number, code: Code, message: string, callbacks: (() => void)[]): StreamLease {
  return {
    deadline,
    deadlineError: () => new ConnectError(message, code),
    release() {
      for (const callback of callbacks.splice(0)) callback();
    },
  };
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
    let deadlineCode = Code.DeadlineExceeded;
    let deadlineMessage = "deadline";
    const callbacks: (() => void)[] = [];
    let ended = false;
    let handedOver = false;
    const runCallbacks = () => {
      for (const callback of callbacks.splice(0)) callback();
    };
    const end = () => {
      if (ended) return;
      ended = true;
      request.signal.removeEventListener("abort", end);
      if (!handedOver) runCallbacks();
    };
    // A client gone before its stream was ever read never runs the stream's
    // finally; one gone before this call even started (HTTP/2 rapid reset)
    // fires no abort event either.
    if (request.signal.aborted) end();
    else request.signal.addEventListener("abort", end, { once: true });
    request.contextValues.set(streamControlsKey, {
      endBy(at, code, message) {
        if (at < deadline) [deadline, deadlineCode, deadlineMessage] = [at, code, message];
      },
      onEnd(callback) {
        if (ended && !handedOver) callback();
        else callbacks.push(callback);
      },
      handOver() {
        handedOver = true;
        // The guard is done with this call: nothing of its scope stays reachable from the signal.
        request.signal.removeEventListener("abort", end);
        return createLease(deadline, deadlineCode, deadlineMessage, ended ? [] : callbacks);
      },
    });
    const hide = (error: unknown): unknown => {
      // A call the client abandoned ends however its work unwinds (AbortError and
      // the like): nobody reads the answer, and it is no bug worth a log line.
      if (error instanceof ConnectError || request.signal.aborted) return error;
      logger.error({ err: error, procedure: redactUrl(request.url) }, "internal error");
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
    const deadlineError = () => new ConnectError(deadlineMessage, deadlineCode);
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
