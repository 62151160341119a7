import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { publicError } from "../call/public-error.js";
import type { OpenCall, OpenCalls } from "../call/open-calls.js";
import { streamControlsKey, type StreamLease } from "../call/stream-controls.js";
import { redactUrl, type Logger } from "../log.js";
import { endStreamAt } from "./end-stream-at.js";

/** The end of a call, handed over to its stream: plain data and the end-of-call callbacks, its methods on the prototype. */
class Lease implements StreamLease {
  constructor(
    readonly deadline: number,
    private readonly code: Code,
    private readonly message: string,
    private callbacks: (() => void)[],
    readonly call: OpenCall | undefined,
    /** Whether the call is still in the open calls, for `release` to take it out. */
    private open: boolean,
  ) {}

  deadlineError(): ConnectError {
    return new ConnectError(this.message, this.code);
  }

  release(): void {
    const callbacks = this.callbacks;
    this.callbacks = [];
    for (const callback of callbacks) callback();
    if (this.open) this.call?.close();
    this.open = false;
  }
}

/**
 * The outermost interceptor, for every transport. It wraps a call's stream
 * once, however many concerns ask for it (token expiry, stream lifetime,
 * per-user stream counts): each wrapper is an async-generator hop per message
 * per subscriber, the hottest path of a fan-out, so there is one.
 *
 * It keeps the call's entry in the instance's open calls (`calls`), so a
 * stream can be ended from outside: the server API's Disconnect, access to a
 * room withdrawn. Until the stream detaches, the end goes through the same
 * race as the deadline.
 *
 * It is also the last line of the one error path: anything thrown that is not
 * a ConnectError is a bug. It reaches the client as `internal` with the fixed
 * message "internal error" (connect-es's handlers and the bridges answer so
 * too), and the original, which nothing else would record, goes to the log.
 */
export function createStreamGuardInterceptor(logger: Logger, calls: OpenCalls): Interceptor {
  return (next) => async (request) => {
    let deadline = Infinity;
    let deadlineCode = Code.DeadlineExceeded;
    let deadlineMessage = "deadline";
    const callbacks: (() => void)[] = [];
    let call: OpenCall | undefined;
    let ended = false;
    let handedOver = false;
    const runCallbacks = () => {
      for (const callback of callbacks.splice(0)) callback();
      call?.close();
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
      identify(userId) {
        if (call === undefined) {
          call = calls.open(userId);
          // Taken out of the open calls when the call ends (runCallbacks, or the lease's release).
          if (ended && !handedOver) call.close();
        }
        return call;
      },
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
        return new Lease(deadline, deadlineCode, deadlineMessage, ended ? [] : callbacks, call, !ended);
      },
    });
    const hide = (error: unknown): unknown => {
      // A call the client abandoned ends however its work unwinds (AbortError and
      // the like): nobody reads the answer, and it is no bug worth a log line.
      if (request.signal.aborted) return error;
      const { error: shown, hidden } = publicError(error);
      if (shown !== error) logger.error({ err: hidden, procedure: redactUrl(request.url) }, "internal error");
      return shown;
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
    const messages = deadline === Infinity && call === undefined ? response.message : endStreamAt(response.message, deadline, deadlineError, call);
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
