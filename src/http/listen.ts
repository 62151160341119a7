import { readFileSync } from "node:fs";
import http, { type IncomingMessage } from "node:http";
import http2 from "node:http2";
import net from "node:net";
import type { Duplex } from "node:stream";
import type { HttpRequest, HttpResponse } from "./mount.js";
import { refuseSocket } from "./refuse-socket.js";
import { writeHead } from "./write-head.js";

export interface ListenOptions {
  readonly port: number;
  readonly host: string;
  readonly tls?: { readonly certFile: string; readonly keyFile: string };
  /** Time a client has to send its request headers; a new connection, its first bytes. */
  readonly headersTimeoutMs: number;
  /** Time a client has to send its whole request (headers and body); the response may take longer. */
  readonly requestTimeoutMs: number;
  /** Most request headers; more get 431 Request Header Fields Too Large. */
  readonly maxHeaders: number;
  /** An HTTP/2 session with no open stream for this long is closed. */
  readonly idleTimeoutMs: number;
  readonly handler: (req: HttpRequest, res: HttpResponse) => void;
  readonly upgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
  /** Called for every new connection, with its protocol, and again when it closes. */
  readonly onConnection?: (transport: "http1" | "http2", delta: 1 | -1) => void;
  /** Connections held at once; more are closed as they arrive (`server.maxConnections`). 0: no cap. */
  readonly maxConnections?: number;
  /** Called for each connection closed on arrival because `maxConnections` were open. */
  readonly onRefused?: () => void;
}

export interface Listener {
  readonly port: number;
  /** Stops accepting; sends GOAWAY on HTTP/2 sessions and closes idle HTTP/1.1 connections. */
  stopAccepting(): void;
  /** Destroys every connection still open. */
  destroyAll(): void;
  /** Resolves when every connection has closed. */
  closed(): Promise<void>;
}

const emptyHead = Buffer.alloc(0);

/**
 * The listen backlog: the kernel's own cap, net.core.somaxconn (4096 since
 * Linux 5.4), rather than Node's 511, which a mass reconnect (a deploy, a
 * network blip) overflows, each dropped handshake costing its client a SYN
 * retransmit of a second or more. The kernel caps any larger value, so
 * where somaxconn cannot be read 4096 is asked for.
 */
export function listenBacklog(): number {
  try {
    const somaxconn = Number(readFileSync("/proc/sys/net/core/somaxconn", "utf8").trim());
    if (Number.isInteger(somaxconn) && somaxconn > 0) return somaxconn;
  } catch {
    // not Linux
  }
  return 4096;
}

/** A connection's 'error' listener (`this` is the socket): 'close' follows, and the connection is forgotten then. */
function destroySocket(this: Duplex): void {
  this.destroy();
}

/** The first bytes of every HTTP/2 connection with prior knowledge (RFC 9113 §3.4). */
const http2Preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
/** HTTP/2 flow-control window per connection; Node's default of 64 KiB throttles fan-out. */
const connectionWindowBytes = 8 * 1024 * 1024;
const http2Settings: http2.Settings = { initialWindowSize: 1024 * 1024, maxConcurrentStreams: 1000 };
/** HTTP/2 pseudo-headers (:method, :path, :scheme, :authority) count as header pairs in Node. */
const pseudoHeaders = 4;

/**
 * Serves HTTP/1.1 and HTTP/2 on one port. Cleartext: each connection's first
 * bytes are read; the HTTP/2 preface goes to an h2c server (what gRPC clients
 * use), anything else to an HTTP/1.1 server (browsers, curl). Node has no
 * built-in way to serve both on one cleartext port, hence this small sniffer.
 * TLS: ALPN picks h2 or http/1.1.
 */
export async function listen(options: ListenOptions): Promise<Listener> {
  /** Open connections and what each speaks (a Map, so one shared 'close' listener can tell). */
  const sockets = new Map<Duplex, "http1" | "http2">();
  const sessions = new Set<http2.Http2Session>();
  function untrack(this: Duplex): void {
    const transport = sockets.get(this);
    if (transport === undefined) return;
    sockets.delete(this);
    options.onConnection?.(transport, -1);
  }
  const track = (socket: Duplex, transport: "http1" | "http2") => {
    sockets.set(socket, transport);
    options.onConnection?.(transport, 1);
    socket.once("close", untrack);
  };
  /** Open streams per session: its idle timer counts from the last one's end. */
  const openStreams = new WeakMap<http2.Http2Session, number>();
  /** Streams whose request body has not ended, and the timer that cancels them if it never does. */
  const requestTimers = new WeakMap<http2.ServerHttp2Stream, NodeJS.Timeout>();
  // Stream listeners shared by every stream (`this` is the stream): an idle stream holds no closure of its own.
  function requestEnded(this: http2.ServerHttp2Stream): void {
    clearTimeout(requestTimers.get(this));
    requestTimers.delete(this);
  }
  /** What a stream's 'close' does in `session`: one listener per session, shared by its streams (a closed stream no longer knows its session). */
  function streamClosedIn(session: http2.Http2Session): (this: http2.ServerHttp2Stream) => void {
    return function streamClosed(this: http2.ServerHttp2Stream): void {
      requestEnded.call(this);
      const open = (openStreams.get(session) ?? 1) - 1;
      openStreams.set(session, open);
      // Idle time counts from the last stream's end: re-arm, or a session
      // whose streams were still closing when the timer fired (a flood's
      // handlers finishing under load) would never be checked again.
      if (open === 0 && !session.destroyed) session.setTimeout(options.idleTimeoutMs);
    };
  }
  const onSession = (session: http2.Http2Session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
    // A session with no stream left and nothing said for a while is closed.
    // Besides tidying idle clients, this frees sessions that Node stops
    // reading after answering a rapid-reset flood (CVE-2023-44487) with
    // GOAWAY: they would otherwise stay open, and counted, forever.
    openStreams.set(session, 0);
    const streamClosed = streamClosedIn(session);
    session.on("stream", (stream: http2.ServerHttp2Stream) => {
      openStreams.set(session, (openStreams.get(session) ?? 0) + 1);
      // Like HTTP/1.1's requestTimeout: a request body that never ends must
      // not hold its stream (and its handler) open forever. The response may
      // stream for as long as it likes; only the request is timed.
      // A request without a body (a GET: SSE, health) is complete with its headers.
      if (!stream.endAfterHeaders) {
        requestTimers.set(
          stream,
          setTimeout(() => stream.close(http2.constants.NGHTTP2_CANCEL), options.requestTimeoutMs),
        );
        stream.once("end", requestEnded);
      }
      stream.once("close", streamClosed);
    });
    session.setTimeout(options.idleTimeoutMs);
    session.on("timeout", () => {
      if (openStreams.get(session) === 0) session.destroy();
    });
    session.once("connect", () => session.setLocalWindowSize(connectionWindowBytes));
    session.on("error", () => undefined);
  };

  // Node drops headers past maxHeadersCount silently; one more than allowed
  // is read so that a request over the limit can be told apart and refused.
  const tooManyHeaders = (req: IncomingMessage) => req.rawHeaders.length / 2 > options.maxHeaders;
  const handler = (req: HttpRequest, res: HttpResponse) => {
    if ("rawHeaders" in req && req.httpVersionMajor === 1 && tooManyHeaders(req as IncomingMessage)) {
      writeHead(res, 431, { connection: "close", "content-type": "text/plain" });
      res.end(`more than ${options.maxHeaders} request headers\n`);
      return;
    }
    options.handler(req, res);
  };
  const upgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (tooManyHeaders(req)) return refuseSocket(socket, 431);
    options.upgrade(req, socket, head);
  };
  const http1Limits = {
    headersTimeout: options.headersTimeoutMs,
    requestTimeout: Math.max(options.requestTimeoutMs, options.headersTimeoutMs),
    // How often Node checks those timeouts (its default is 30 s).
    connectionsCheckingInterval: Math.min(1000, options.headersTimeoutMs),
    maxHeadersCount: options.maxHeaders + 1,
  };
  const h1 = http.createServer({ ...http1Limits, maxHeaderSize: 16 * 1024 }, handler);
  h1.maxHeadersCount = http1Limits.maxHeadersCount;
  // h1 never listens itself (connections are handed to it), and Node starts
  // its headersTimeout/requestTimeout checks on "listening": start them here.
  h1.emit("listening");
  h1.on("upgrade", upgrade);
  h1.on("clientError", (error: Error & { code?: string }, socket) => {
    // The answers Node itself would give, each closing the connection.
    refuseSocket(socket, error.code === "ERR_HTTP_REQUEST_TIMEOUT" ? 408 : error.code === "HPE_HEADER_OVERFLOW" ? 431 : 400);
  });

  /** Cleartext connections whose first bytes do not yet tell HTTP/1.1 from HTTP/2: when each opened, what it sent. */
  const sniffing = new Map<net.Socket, { readonly openedAt: number; head: Buffer }>();
  let sweeper: NodeJS.Timeout | undefined;
  let server: net.Server;
  if (options.tls) {
    const secure = http2.createSecureServer(
      {
        cert: readFileSync(options.tls.certFile),
        key: readFileSync(options.tls.keyFile),
        allowHTTP1: true,
        settings: http2Settings,
        maxHeaderListPairs: options.maxHeaders + pseudoHeaders,
        // A connection that never finishes its TLS handshake is closed like one with slow headers.
        handshakeTimeout: options.headersTimeoutMs,
      },
      handler,
    );
    // HTTP/1.1 over TLS is served by the HTTP/2 server itself (allowHTTP1), which
    // reads these http.Server properties; Node's types do not declare them.
    Object.assign(secure, http1Limits);
    secure.on("session", onSession);
    secure.on("upgrade", upgrade);
    secure.on("secureConnection", (socket) => track(socket, socket.alpnProtocol === "h2" ? "http2" : "http1"));
    server = secure;
  } else {
    const h2c = http2.createServer({ settings: http2Settings, maxHeaderListPairs: options.maxHeaders + pseudoHeaders }, handler);
    h2c.on("session", onSession);
    // Listeners shared by every connection (`this` is the socket), and the bytes read so far kept only while sniffing:
    // an idle connection then holds no closure, timer or request head of the sniffer (the idle bench counts bytes per connection).
    function route(this: net.Socket, chunk: Buffer): void {
      const sniff = sniffing.get(this);
      if (sniff === undefined) return;
      const head = (sniff.head = sniff.head.length === 0 ? chunk : Buffer.concat([sniff.head, chunk]));
      const compared = Math.min(head.length, http2Preface.length);
      const isHttp2 = head.subarray(0, compared).equals(http2Preface.subarray(0, compared));
      if (isHttp2 && head.length < 3) return; // too few bytes to tell yet
      sniffing.delete(this);
      this.off("data", route);
      this.pause();
      this.unshift(head);
      track(this, isHttp2 ? "http2" : "http1");
      if (isHttp2) {
        // Http2Session replays bytes left in the socket's buffer on the next tick.
        h2c.emit("connection", this);
      } else {
        h1.emit("connection", this);
        this.resume();
      }
    }
    function forget(this: net.Socket): void {
      sniffing.delete(this);
    }
    server = net.createServer((socket) => {
      socket.on("error", destroySocket);
      sniffing.set(socket, { openedAt: Date.now(), head: emptyHead });
      socket.once("close", forget);
      socket.on("data", route);
    });
    // A connection that never says a word is closed like one with slow headers: one sweep for all of them
    // (as Node checks its own headersTimeout), not a timer per connection that would outlive the sniffing.
    sweeper = setInterval(
      () => {
        const tooOld = Date.now() - options.headersTimeoutMs;
        for (const [socket, sniff] of sniffing) {
          if (sniff.openedAt <= tooOld) socket.destroy();
        }
      },
      Math.min(1000, options.headersTimeoutMs),
    ).unref();
  }

  if (options.maxConnections) {
    server.maxConnections = options.maxConnections;
    // In a node:cluster worker, a full server otherwise answers the primary
    // "not accepted", and the primary hands the connection to the next worker,
    // and round again while all are full: it holds every such connection, the
    // clients wait unanswered, and the service stalls (Node's
    // lib/internal/cluster/child.js onconnection). With this set the worker
    // takes the connection and closes it at once, as a lone process does,
    // and the primary lets go of it. Node >= 22.12; @types/node lacks it.
    Object.assign(server, { dropMaxConnection: true });
    server.on("drop", () => options.onRefused?.());
  }
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ port: options.port, host: options.host, backlog: listenBacklog() }, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : options.port;

  return {
    port,
    stopAccepting() {
      server.close();
      h1.close(); // stops h1's timeout checks; its connections close as they finish
      for (const session of sessions) session.close();
      h1.closeIdleConnections();
      if ("closeIdleConnections" in server && typeof server.closeIdleConnections === "function") {
        server.closeIdleConnections();
      }
    },
    destroyAll() {
      clearInterval(sweeper);
      for (const session of sessions) session.destroy();
      for (const socket of sockets.keys()) socket.destroy();
    },
    async closed() {
      while (sockets.size > 0) {
        await new Promise<void>((resolve) => {
          const first = sockets.keys().next().value;
          if (!first) return resolve();
          first.once("close", () => resolve());
        });
      }
    },
  };
}
