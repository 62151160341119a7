import { Code } from "@connectrpc/connect";

/**
 * The HTTP status of an SSE response that fails before its first event, by
 * Connect code. This is the Connect protocol's own table
 * (https://connectrpc.com/docs/protocol#error-codes), so an SSE client sees
 * the status a Connect unary call would get for the same failure. Once the
 * stream has started the status is already 200, and the code travels in an
 * `event: error` instead.
 *
 * Routing failures are not in this table: an unknown method is 404 and a
 * method that is not server-streaming is 405 (see `sse-request.ts`), as a
 * Connect router answers for paths it does not serve.
 */
export function httpStatusOf(code: Code): number {
  switch (code) {
    case Code.Canceled:
      return 499; // Client Closed Request (nginx's convention, as Connect uses it)
    case Code.Unknown:
      return 500;
    case Code.InvalidArgument:
      return 400;
    case Code.DeadlineExceeded:
      return 504;
    case Code.NotFound:
      return 404;
    case Code.AlreadyExists:
      return 409;
    case Code.PermissionDenied:
      return 403;
    case Code.ResourceExhausted:
      return 429;
    case Code.FailedPrecondition:
      return 400;
    case Code.Aborted:
      return 409;
    case Code.OutOfRange:
      return 400;
    case Code.Unimplemented:
      return 501;
    case Code.Internal:
      return 500;
    case Code.Unavailable:
      return 503;
    case Code.DataLoss:
      return 500;
    case Code.Unauthenticated:
      return 401;
    default:
      return 500; // as Unknown
  }
}
