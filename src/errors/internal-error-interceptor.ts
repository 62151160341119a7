import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { Logger } from "../log.js";

/**
 * The last line of the one error path: anything thrown that is not a
 * ConnectError is a bug. It reaches the client as `internal` with the fixed
 * message "internal error" (connect-es's handlers and the bridges already
 * answer so), and its original, which nothing else would record, goes to the
 * log with the procedure. Runs outermost, for every transport.
 */
export function createInternalErrorInterceptor(logger: Logger): Interceptor {
  const hide = (error: unknown, procedure: string, signal: AbortSignal): unknown => {
    // A call the client abandoned ends however its work unwinds (AbortError and
    // the like): nobody reads the answer, and it is no bug worth a log line.
    if (error instanceof ConnectError || signal.aborted) return error;
    logger.error({ err: error, procedure }, "internal error");
    return new ConnectError("internal error", Code.Internal);
  };
  return (next) => async (request) => {
    let response;
    try {
      response = await next(request);
    } catch (error) {
      throw hide(error, request.url, request.signal);
    }
    if (!response.stream) return response;
    const messages = response.message;
    return {
      ...response,
      message: (async function* () {
        try {
          yield* messages;
        } catch (error) {
          throw hide(error, request.url, request.signal);
        }
      })(),
    };
  };
}
