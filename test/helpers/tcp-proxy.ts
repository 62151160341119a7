import { EventEmitter, once } from "node:events";
import net from "node:net";

/**
 * A TCP proxy in front of a test server, to do to connections what a network
 * does: drop them mid-stream, hold new ones while "down", or freeze them
 * (open but silent). The server and clients stay the real ones.
 */
export interface TcpProxy {
  readonly port: number;
  /** http://127.0.0.1:<port> */
  readonly url: string;
  /** The head of every HTTP/1.1 request that went through, in order. */
  readonly requests: string[];
  /** Emits "connection" when a client connects, even while held. */
  readonly events: EventEmitter;
  /**
   * Destroys every open connection; with `hold`, new connections wait until
   * `release()`; with `refuse`, they are closed at once until `release()`
   * (a server that is down: clients fail fast and wait to retry).
   */
  drop(options?: { hold?: boolean; refuse?: boolean }): void;
  /** Connects held connections and lets new ones through. */
  release(): void;
  /** Stops forwarding on every open connection without closing it (a silent server). New connections pass. */
  freeze(): void;
  /** How many connections clients have made so far, held ones included. */
  connections(): number;
  /** Resolves when `count` connections have been made in total. */
  waitForConnections(count: number): Promise<void>;
  close(): Promise<void>;
}

/** Starts a proxy to 127.0.0.1:`targetPort` on a free port. */
export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  const open = new Set<net.Socket>();
  // Frozen sockets no longer forward, but close() must still end them, or the proxy never closes.
  const frozen = new Set<net.Socket>();
  const held: net.Socket[] = [];
  const requests: string[] = [];
  const events = new EventEmitter();
  let holding = false;
  let refusing = false;
  let connections = 0;

  const connect = (client: net.Socket) => {
    const upstream = net.connect(targetPort, "127.0.0.1");
    open.add(client).add(upstream);
    client.on("data", (chunk: Buffer) => {
      const text = chunk.toString("latin1");
      if (/^[A-Z]+ \S+ HTTP\/1\.1\r\n/.test(text)) requests.push(text);
    });
    client.pipe(upstream);
    upstream.pipe(client);
    const close = () => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on("error", close).on("close", close);
    upstream.on("error", close).on("close", close);
  };

  const server = net.createServer((client) => {
    connections++;
    // A held socket is left paused: its request waits in the buffer until connected.
    client.on("error", () => client.destroy());
    if (refusing) client.destroy();
    else if (holding) held.push(client);
    else connect(client);
    events.emit("connection");
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as net.AddressInfo).port;

  return {
    port,
    url: `http://127.0.0.1:${port}`,
    requests,
    events,
    drop(options = {}) {
      holding = options.hold ?? false;
      refusing = options.refuse ?? false;
      for (const socket of open) socket.destroy();
      open.clear();
    },
    release() {
      holding = false;
      refusing = false;
      for (const client of held.splice(0)) if (!client.destroyed) connect(client);
    },
    freeze() {
      for (const socket of open) {
        socket.unpipe();
        socket.pause();
        frozen.add(socket);
      }
      open.clear();
    },
    connections: () => connections,
    async waitForConnections(count) {
      while (connections < count) await once(events, "connection");
    },
    async close() {
      for (const socket of [...open, ...held, ...frozen]) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
