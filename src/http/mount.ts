import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import type { Duplex } from "node:stream";
import type { Config } from "../config.js";
import type { Logger } from "../log.js";
import type { Metrics } from "../metrics.js";
import type { BridgeMethod } from "../call/method-registry.js";

export type HttpRequest = IncomingMessage | Http2ServerRequest;
export type HttpResponse = ServerResponse | Http2ServerResponse;

/** What the server hands a bridge: the schema's methods and the server's shared parts. */
export interface MountContext {
  readonly methods: ReadonlyMap<string, BridgeMethod>;
  readonly config: Config;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Aborted when the server starts shutting down. */
  readonly shutdownSignal: AbortSignal;
}

/** A transport served beside the Connect router on the same port. */
export interface Mount {
  /** Serves the request and returns true, or returns false to pass it on. */
  handle?(req: HttpRequest, res: HttpResponse, url: URL): boolean;
  /** Takes an HTTP/1.1 upgrade request and returns true, or returns false to pass it on. */
  upgrade?(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL): boolean;
  /** Tells this transport's clients to reconnect elsewhere; resolves when they are gone. */
  shutdown?(): Promise<void>;
}
