import type { Broker } from "../../src/broker/broker.js";
import type { ServiceRegistration } from "../../src/call/method-registry.js";
import { loadConfig, type Config } from "../../src/config.js";
import type { DestinationStream } from "pino";
import { createLogger } from "../../src/log.js";
import { startServer, type RivuletServer } from "../../src/server.js";
import type { ServiceDeps } from "../../src/services/service-deps.js";

/** A real Rivulet server on a free loopback port, for one test file. */
export interface TestServer {
  readonly server: RivuletServer;
  readonly port: number;
  /** http://127.0.0.1:<port> */
  readonly url: string;
  /** A valid token for the user, signed with the server's secret. */
  token(userId: string, roles?: readonly string[], ttlSeconds?: number): Promise<string>;
  close(): Promise<void>;
}

/** The secret test servers sign tokens with. */
export const testSecret = "rivulet-test-secret-at-least-32-bytes-long";

export interface TestServerOptions {
  readonly config?: Partial<Config>;
  readonly broker?: Broker;
  readonly extraServices?: (deps: ServiceDeps) => readonly ServiceRegistration[];
  /** Where the server's log goes instead of stdout (tests that read it set `config.logLevel` too). */
  readonly logDestination?: DestinationStream;
}

/** Starts the real server (the same `startServer` as `npm start`) with test-friendly defaults. */
export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const config: Config = {
    ...loadConfig([], {}),
    port: 0,
    host: "127.0.0.1",
    logLevel: "silent",
    authSecret: testSecret,
    tokenIntervalMs: 2,
    shutdownGraceMs: 1000,
    // Rooms open to every signed-in user, as before room access existed; the access suites set their own.
    roomsDefault: "allow",
    // Suites publish fast from one user; the limit suite sets its own.
    publishRate: 1_000_000,
    publishBurst: 1_000_000,
    ...options.config,
  };
  const server = await startServer({
    config,
    logger: createLogger(config.logLevel, options.logDestination),
    broker: options.broker,
    extraServices: options.extraServices,
  });
  const scheme = config.tlsCert ? "https" : "http";
  return {
    server,
    port: server.port,
    url: `${scheme}://127.0.0.1:${server.port}`,
    token: (userId, roles = [], ttlSeconds = 3600) => server.tokens.mint({ userId, roles, ttlSeconds }),
    close: () => server.close(),
  };
}

/** The value of one series on the server's `/metrics` (for example `rivulet_deliveries_total{transport="sse"}`), 0 when absent. */
export async function metricValue(baseUrl: string, series: string): Promise<number> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}
