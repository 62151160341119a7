import type { DescMethod, DescService, Message } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createContextValues,
  createHandlerContext,
  createMethodImplSpec,
  type ContextValues,
  type HandlerContext,
  type Interceptor,
  type MethodImplSpec,
  type ServiceImpl,
} from "@connectrpc/connect";
// connect-es internals: pinned exactly, guarded by test/platform/pinned-internals.test.ts (docs/development.md, "Pinned versions").
import { createAsyncIterable, invokeUnaryImplementation, transformInvokeImplementation } from "@connectrpc/connect/protocol";
import { streamPolicyOf, type StreamPolicy } from "../wire/stream-policy.js";
import { connectionCredentialsKey, type ConnectionCredentials } from "./connection-credentials.js";
import { responseSinkKey, type ResponseSink } from "./response-sink.js";

/** A service and its implementation, as mounted on the Connect router. */
export interface ServiceRegistration {
  readonly service: DescService;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- ServiceImpl is generic over each service; the registry erases it.
  readonly impl: Partial<ServiceImpl<any>>;
}

/** What a bridge knows about one call: the transport, headers and lifetime. */
export interface CallInit {
  /** "sse" or "websocket": shows in HandlerContext.protocolName. */
  readonly protocolName: string;
  readonly requestMethod: string;
  readonly url: string;
  readonly requestHeader: Headers;
  /** Aborted when the client goes away or cancels. */
  readonly signal: AbortSignal;
  /**
   * Takes a streaming call's responses directly (topic streams then skip the
   * iterator; see response-sink.ts). The iterator still ends the call.
   */
  readonly sink?: ResponseSink;
  /** The client's deadline (Connect and gRPC timeout headers): the call ends with deadline_exceeded after it. */
  readonly timeoutMs?: number;
  /** The credentials memo of a connection that carries many calls (connection-credentials.ts). */
  readonly connectionCredentials?: ConnectionCredentials<unknown>;
}

/** One unary or server-streaming method the bridges can call. */
export interface BridgeMethod {
  readonly method: DescMethod;
  readonly kind: "unary" | "server_streaming";
  readonly policy: StreamPolicy;
  /** Calls the method with the router's interceptors; the response is the implementation's own objects. */
  invoke(input: Message, init: CallInit): AsyncIterable<Message>;
  /**
   * A unary call's context, made as connect-es's handlers make it, for a
   * transport that writes the response itself (src/bridge/rpc/unary-bridge.ts):
   * it reads the response headers and trailers the interceptors set, and
   * ends the call with `context.abort(callEnded)`.
   */
  createContext(init: CallInit, responseHeader: HeadersInit): CallContext;
  /** Calls a unary method with the router's interceptors in `context`; resolves with the implementation's response. */
  invokeUnary(input: Message, context: CallContext): Promise<Message>;
}

/** A call's context as connect-es's handlers hold it: `abort` ends the call (its signal, its deadline timer). */
export type CallContext = HandlerContext & { abort(reason?: unknown): void };

/**
 * The reason a finished call's context is aborted with. connect-es's handlers
 * call `context.abort()` with no reason, and the platform then builds an
 * `AbortError` DOMException with a stack trace per call (about 5 % of a unary
 * publish's CPU): one prebuilt reason costs nothing. Nothing reads it but
 * listeners still attached to a finished call.
 */
export const callEnded: ConnectError = new ConnectError("the call ended", Code.Canceled);

/**
 * The bridges' view of the schema: every unary and server-streaming method
 * of the mounted services by full name ("rivulet.chat.v1.ChatService/Send").
 *
 * Calls go to the implementations through the same interceptor list as the
 * Connect router (connect-es's own invoke helpers), not through the router's
 * byte-level handlers: that keeps authentication identical on every transport
 * while handing the bridges the very message objects a service yields, so a
 * message fanned out to many subscribers is encoded once per encoding (the
 * bridges cache encodings per object).
 */
export function createMethodRegistry(
  registrations: readonly ServiceRegistration[],
  interceptors: readonly Interceptor[],
  shutdownSignal: AbortSignal,
): ReadonlyMap<string, BridgeMethod> {
  const methods = new Map<string, BridgeMethod>();
  const interceptorList = [...interceptors];
  for (const { service, impl } of registrations) {
    for (const method of service.methods) {
      const fn = impl[method.localName] as unknown;
      if (typeof fn !== "function") continue;
      if (method.methodKind !== "unary" && method.methodKind !== "server_streaming") continue;
      const spec = createMethodImplSpec(method, fn.bind(impl) as never) as MethodImplSpec;
      const contextOf = (init: CallInit, responseHeader: HeadersInit | undefined) =>
        createHandlerContext({
          service,
          method,
          protocolName: init.protocolName,
          requestMethod: init.requestMethod,
          url: init.url,
          requestHeader: init.requestHeader,
          requestSignal: init.signal,
          timeoutMs: init.timeoutMs,
          shutdownSignal,
          responseHeader,
          contextValues: contextValuesOf(init),
        });
      methods.set(`${service.typeName}/${method.name}`, {
        method,
        kind: method.methodKind,
        policy: streamPolicyOf(method),
        createContext: (init, responseHeader) => contextOf(init, responseHeader),
        // Only unary methods are called so (kind "unary"); connect-es's helper takes a unary spec.
        invokeUnary: (input, context) => invokeUnaryImplementation(spec as Extract<MethodImplSpec, { kind: "unary" }>, context, input, interceptorList),
        invoke(input, init) {
          const context = contextOf(init, undefined);
          // connect-es's invoke helper serves unary and server-streaming specs alike.
          // Aborting the context when the call's iterator is done (as connect-es's own
          // handlers do) unlinks it from the request and shutdown signals: a stream
          // that detached (ResponseSink.detach) then keeps nothing of it.
          const responses = transformInvokeImplementation(spec, context, [...interceptors])(createAsyncIterable([input]));
          return (async function* () {
            try {
              yield* responses;
            } finally {
              context.abort(callEnded);
            }
          })();
        },
      });
    }
  }
  return methods;
}

/** A call's context values: its transport's sink and connection memo, when it has them. */
function contextValuesOf(init: CallInit): ContextValues {
  const values = createContextValues();
  if (init.sink) values.set(responseSinkKey, init.sink);
  if (init.connectionCredentials) values.set(connectionCredentialsKey, init.connectionCredentials);
  return values;
}

/** Looks a method up by full name; `unimplemented` when there is none. */
export function findMethod(methods: ReadonlyMap<string, BridgeMethod>, name: string): BridgeMethod {
  const method = methods.get(name.replace(/^\//, ""));
  if (!method) throw new ConnectError(`unknown method ${name}`, Code.Unimplemented);
  return method;
}
