import type { DescMessage, DescMethodStreaming, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type StreamResponse } from "@connectrpc/connect";

/**
 * The one request of a server-streaming call. connect-es hands every
 * streaming call's input to a transport as an async iterable; a server
 * stream has exactly one message in it, and a call without one is refused
 * as connect-es's own transports refuse it.
 */
export async function onlyRequest<I extends DescMessage>(input: AsyncIterable<MessageInitShape<I>>): Promise<MessageInitShape<I>> {
  for await (const message of input) return message;
  throw new ConnectError("a server-streaming call needs one request message", Code.InvalidArgument);
}

/** A server stream's response as connect-es's client expects it from a transport; our transports send no headers or trailers. */
export function streamResponse<I extends DescMessage, O extends DescMessage>(
  method: DescMethodStreaming<I, O>,
  message: AsyncIterable<MessageShape<O>>,
): StreamResponse<I, O> {
  return { stream: true, service: method.parent, method, header: new Headers(), trailer: new Headers(), message };
}
