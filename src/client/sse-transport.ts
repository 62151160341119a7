import type { DescMessage, DescMethodStreaming, DescMethodUnary, MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type StreamResponse, type Transport, type UnaryResponse } from "@connectrpc/connect";
import { onlyRequest, streamResponse } from "./server-stream.js";
import type { Gap } from "../../gen/rivulet/stream/v1/gap_pb.js";
import { createSseClient, type SseClientOptions } from "./sse.js";

/** An SSE client's options, and where unary calls go. */
export interface SseTransportOptions extends SseClientOptions {
  /** Unary calls (Send, Publish, ...) go here, e.g. a Connect transport; without it they fail with `unimplemented`. */
  readonly unaryTransport?: Transport;
  /**
   * Called before every reconnection of any stream this transport opened,
   * with the method, the reason and the delay chosen (to show "reconnecting
   * in 3 s"): the transport-wide form of `SseSubscribeOptions.onReconnect`.
   */
  readonly onReconnect?: (reason: ConnectError, delayMs: number, method: DescMethodStreaming) => void;
  /** Called for a response of any of its streams that says the server could not replay everything (`rivulet.stream.v1.Gap`). */
  readonly onGap?: (gap: Gap, method: DescMethodStreaming) => void;
}

/**
 * A Connect `Transport` whose server-streaming calls run over Rivulet's SSE
 * bridge, with the SSE client's reconnection and resume: so
 * `createClient(ChatService, createSseTransport({ baseUrl }))` works
 * unchanged for streams, in a browser that has only EventSource-friendly
 * HTTP/1.1 or behind proxies that break other streaming. Client- and
 * bidirectional streaming methods cannot be expressed as SSE and fail with
 * `unimplemented`.
 */
export function createSseTransport(options: SseTransportOptions): Transport {
  const client = createSseClient(options);
  return {
    unary<I extends DescMessage, O extends DescMessage>(
      method: DescMethodUnary<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      header: HeadersInit | undefined,
      input: MessageInitShape<I>,
    ): Promise<UnaryResponse<I, O>> {
      if (!options.unaryTransport) {
        return Promise.reject(
          new ConnectError(`${method.parent.typeName}/${method.name} is unary: give createSseTransport a unaryTransport`, Code.Unimplemented),
        );
      }
      return options.unaryTransport.unary(method, signal, timeoutMs, header, input);
    },
    async stream<I extends DescMessage, O extends DescMessage>(
      method: DescMethodStreaming<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      header: HeadersInit | undefined,
      input: AsyncIterable<MessageInitShape<I>>,
    ): Promise<StreamResponse<I, O>> {
      if (method.methodKind !== "server_streaming") {
        throw new ConnectError(`${method.parent.typeName}/${method.name} is ${method.methodKind}: SSE carries server streams only`, Code.Unimplemented);
      }
      const request = await onlyRequest(input);
      const deadline = timeoutMs !== undefined && timeoutMs > 0 ? AbortSignal.timeout(timeoutMs) : undefined;
      const signals = [signal, deadline].filter((s): s is AbortSignal => s !== undefined);
      const { onReconnect, onGap } = options;
      return streamResponse(
        method,
        client.subscribe(method, request, {
          signal: signals.length > 0 ? AbortSignal.any(signals) : undefined,
          headers: header,
          onReconnect: onReconnect && ((reason, delayMs) => onReconnect(reason, delayMs, method)),
          onGap: onGap && ((gap) => onGap(gap, method)),
        }),
      );
    },
  };
}
