import { createClient, type Client, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport, createNodeHttpClient } from "@connectrpc/connect-node";
// connect-es internals: pinned exactly, guarded by test/platform/pinned-internals.test.ts (docs/development.md, "Pinned versions").
import { createTransport as createGrpcProtocolTransport } from "@connectrpc/connect/protocol-grpc";
import type { DescService } from "@bufbuild/protobuf";

/** One way to reach the server: a protocol on an HTTP version. */
export interface NamedTransport {
  readonly name: string;
  readonly transport: Transport;
}

export type Protocol = "connect" | "grpc" | "grpc-web";
export type HttpVersion = "1.1" | "2";

/** A generated-client transport for a protocol and HTTP version (h2c, or h2 over TLS when the URL is https). */
export function transportFor(baseUrl: string, protocol: Protocol, httpVersion: HttpVersion): Transport {
  const tls = baseUrl.startsWith("https:");
  const nodeOptions = tls ? { rejectUnauthorized: false } : undefined;
  const options = httpVersion === "2" ? ({ baseUrl, httpVersion, nodeOptions } as const) : ({ baseUrl, httpVersion, nodeOptions } as const);
  switch (protocol) {
    case "connect":
      return createConnectTransport(options);
    case "grpc":
      // connect-node's createGrpcTransport always speaks HTTP/2; for gRPC over
      // HTTP/1.1 (trailers on a chunked response) assemble the same protocol
      // with connect-node's HTTP/1.1 client.
      return httpVersion === "2"
        ? createGrpcTransport(options)
        : createGrpcProtocolTransport({
            baseUrl,
            httpClient: createNodeHttpClient({ httpVersion: "1.1", nodeOptions }),
            useBinaryFormat: true,
            interceptors: [],
            acceptCompression: [],
            compressMinBytes: 1024,
            readMaxBytes: 0xffffffff,
            writeMaxBytes: 0xffffffff,
            sendCompression: null,
          });
    case "grpc-web":
      return createGrpcWebTransport(options);
  }
}

/** Connect, gRPC and gRPC-Web, each on HTTP/1.1 and HTTP/2. */
export function allTransports(baseUrl: string): NamedTransport[] {
  const result: NamedTransport[] = [];
  for (const protocol of ["connect", "grpc", "grpc-web"] as const) {
    for (const httpVersion of ["1.1", "2"] as const) {
      result.push({ name: `${protocol} over HTTP/${httpVersion}`, transport: transportFor(baseUrl, protocol, httpVersion) });
    }
  }
  return result;
}

/** Call options that carry a bearer token. */
export function bearer(token: string): { headers: { authorization: string } } {
  return { headers: { authorization: `Bearer ${token}` } };
}

/** A typed client for a service over a transport. */
export function clientFor<S extends DescService>(service: S, transport: Transport): Client<S> {
  return createClient(service, transport);
}

/**
 * The first `count` items of a stream; then stops it. Leaving the loop calls
 * the iterator's `return()`, which connect-es 2's clients pass on to the
 * transport: connect-node's transports then cancel the HTTP call (the server
 * sees its signal abort, on every protocol and HTTP version), and Rivulet's
 * WebSocket and SSE transports cancel theirs. So no AbortSignal is needed here.
 */
export async function take<T>(stream: AsyncIterable<T>, count: number): Promise<T[]> {
  const items: T[] = [];
  if (count === 0) return items;
  for await (const item of stream) {
    items.push(item);
    if (items.length >= count) break;
  }
  return items;
}

/** Every item of a stream that ends by itself. */
export async function collect<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of stream) items.push(item);
  return items;
}
