import { setMaxListeners } from "node:events";
import { readFile } from "node:fs/promises";
import { Code, ConnectError, type ConnectRouter, type Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { Broker } from "./broker/broker.js";
import { createMemoryBroker } from "./broker/memory.js";
import { createRedisBroker } from "./broker/redis.js";
import { createTopicHub } from "./broker/topic-hub.js";
import { createAuthInterceptor } from "./auth/interceptor.js";
import { createJwks } from "./auth/jwks.js";
import { loadDevelopmentSecret, developmentSecretPath } from "./auth/development-secret.js";
import { createRandomSecret, createHmacTokens, createTokenVerifier, type TokenMinter } from "./auth/tokens.js";
import { createMethodRegistry, type ServiceRegistration } from "./bridge/method-registry.js";
import { createRpcStreamBridge } from "./bridge/rpc-stream-bridge.js";
import { createSseBridge } from "./bridge/sse-bridge.js";
import { createWebSocketBridge } from "./bridge/websocket-bridge.js";
import type { HttpRequest, HttpResponse, Mount, MountContext } from "./bridge/mount.js";
import type { Config } from "./config.js";
import { applyCors } from "./http/cors.js";
import { listen } from "./http/listen.js";
import { writeHead } from "./http/write-head.js";
import { requestCompression } from "./http/request-compression.js";
import type { Logger } from "./log.js";
import { clampDeadline } from "./limits/clamp-deadline.js";
import { createStreamGuardInterceptor } from "./limits/stream-guard.js";
import { createUserLimitsInterceptor } from "./limits/user-limits.js";
import { createMetrics } from "./metrics.js";
import { ChatService } from "../gen/rivulet/chat/v1/chat_pb.js";
import { NotificationService } from "../gen/rivulet/notify/v1/notify_pb.js";
import { ProgressService } from "../gen/rivulet/progress/v1/progress_pb.js";
import { createChatService } from "./services/chat.js";
import { createGrpcServices } from "./grpc/grpc-services.js";
import { createEmbeddedGenerator, createOpenAiGenerator } from "./services/generator.js";
import { createNotificationService } from "./services/notify.js";
import { createProgressService } from "./services/progress.js";
import type { ServiceDeps } from "./services/service-deps.js";

export interface ServerOptions {
  readonly config: Config;
  readonly logger: Logger;
  /** The broker to use instead of the one `config.broker` names (tests). */
  readonly broker?: Broker;
  /** More services to mount beside Rivulet's own (tests mount rivulet.testing.v1). */
  readonly extraServices?: (deps: ServiceDeps) => readonly ServiceRegistration[];
}

export interface RivuletServer {
  /** The port it listens on (the real one when configured with 0). */
  readonly port: number;
  /** Whether it runs in development mode (no auth secret configured). */
  readonly development: boolean;
  /** Mints tokens signed with the server's secret (tests and /dev/token). */
  readonly tokens: TokenMinter;
  readonly broker: Broker;
  /** Graceful shutdown: stop accepting, tell clients to reconnect elsewhere, drain, close. */
  close(): Promise<void>;
}

/** Assembles and starts a Rivulet server: broker, services, Connect router, bridges, health and metrics. */
export async function startServer(options: ServerOptions): Promise<RivuletServer> {
  const { config, logger } = options;
  const metrics = createMetrics();
  const shutdown = new AbortController();
  // Every call's context listens for shutdown: thousands of listeners are expected.
  setMaxListeners(0, shutdown.signal);
  const broker = options.broker ?? (await createBroker(config, logger));

  const development = config.authSecret === undefined && config.authJwks === undefined;
  const claimRules = { issuer: config.authIssuer, audience: config.authAudience };
  // Development mode's secret lives in a file so tokens outlive a restart and are shared by local instances.
  const developmentSecret = development ? await loadDevelopmentSecret(developmentSecretPath).catch((error: unknown) => error as Error) : undefined;
  const secret =
    config.authSecret !== undefined
      ? new TextEncoder().encode(config.authSecret)
      : developmentSecret instanceof Uint8Array
        ? developmentSecret
        : createRandomSecret();
  const tokens = createHmacTokens(secret, claimRules);
  const verifier = createTokenVerifier({
    ...claimRules,
    // JWKS-only deployments accept no HS256 token at all (tokens.mint then signs with an unused random secret).
    secret: config.authSecret !== undefined || development ? secret : undefined,
    jwks: config.authJwks === undefined ? undefined : createJwks({ source: config.authJwks, caFile: config.authJwksCa, cacheMaxAgeMs: config.authJwksCacheMs }),
  });
  if (development) {
    // A directory that cannot hold the file (read-only, another user's) still serves, with a secret of this process only.
    const where =
      developmentSecret instanceof Error
        ? `a random secret of this process only (${developmentSecretPath} could not be kept: ${developmentSecret.message}; tokens will not survive a restart)`
        : `the secret in ${developmentSecretPath} (created once, shared by instances started in this directory)`;
    logger.warn(`DEVELOPMENT MODE: no --auth-secret or --auth-jwks given. Tokens are signed with ${where} and anyone can mint one at GET /dev/token. Never run this way in production.`);
  }

  const deps: ServiceDeps = {
    broker,
    hub: createTopicHub(broker),
    retention: { maxCount: config.historyCount, maxAgeMs: config.historyAgeMs },
    finishedRetention: { maxCount: config.historyCount, maxAgeMs: config.finishedTtlMs },
    subscriberBuffer: config.subscriberBuffer,
    idempotencyTtlMs: config.idempotencyTtlMs,
    completionStallMs: config.completionStallMs,
    generator: config.llmUrl
      ? createOpenAiGenerator({ baseUrl: config.llmUrl, apiKey: config.llmApiKey, defaultModel: config.llmModel })
      : createEmbeddedGenerator({ tokenIntervalMs: config.tokenIntervalMs }),
    shutdownSignal: shutdown.signal,
  };
  const registrations: ServiceRegistration[] = [
    { service: ChatService, impl: createChatService(deps) },
    { service: NotificationService, impl: createNotificationService(deps) },
    { service: ProgressService, impl: createProgressService(deps) },
    ...(options.extraServices?.(deps) ?? []),
  ];
  // gRPC health and reflection: served by connect-node only (the bridges
  // carry Rivulet's services; HTTP probes have /readyz), and without
  // credentials. Health says NOT_SERVING from the start of a shutdown.
  const grpc = createGrpcServices(registrations.map(({ service }) => service), async () => !shutdown.signal.aborted && (await broker.ready()));
  const interceptors: Interceptor[] = [
    createStreamGuardInterceptor(logger),
    createAuthInterceptor(verifier, grpc.publicServiceNames),
    createUserLimitsInterceptor(config),
  ];

  const connectHandler = connectNodeAdapter({
    routes(router: ConnectRouter) {
      for (const { service, impl } of [...registrations, ...grpc.registrations]) router.service(service, impl);
    },
    interceptors,
    readMaxBytes: config.maxMessageBytes,
    acceptCompression: requestCompression,
    maxTimeoutMs: config.maxTimeoutMs,
    shutdownSignal: shutdown.signal,
  });

  const context: MountContext = {
    methods: createMethodRegistry(registrations, interceptors, shutdown.signal),
    config,
    logger,
    metrics,
    shutdownSignal: shutdown.signal,
  };
  const mounts: Mount[] = [createHealthMount(broker, metrics.registry), ...(development ? [createDevTokenMount(tokens)] : []), createWebSocketBridge(context), createSseBridge(context), createRpcStreamBridge(context), createDemoPageMount()];

  const handler = (req: HttpRequest, res: HttpResponse) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (applyCors(req, res, config.allowedOrigins)) return;
    clampDeadline(req.headers, config.maxTimeoutMs);
    for (const mount of mounts) if (mount.handle?.(req, res, url)) return;
    connectHandler(req, res);
  };

  const listener = await listen({
    port: config.port,
    host: config.host,
    tls: config.tlsCert && config.tlsKey ? { certFile: config.tlsCert, keyFile: config.tlsKey } : undefined,
    headersTimeoutMs: config.headersTimeoutMs,
    requestTimeoutMs: config.requestTimeoutMs,
    maxHeaders: config.maxHeaders,
    idleTimeoutMs: config.idleTimeoutMs,
    handler,
    upgrade(req, socket, head) {
      const url = new URL(req.url ?? "/", "http://localhost");
      for (const mount of mounts) if (mount.upgrade?.(req, socket, head, url)) return;
      socket.end("HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    },
    onConnection: (transport, delta) => metrics.connections.inc({ transport }, delta),
  });
  logger.info({ port: listener.port, host: config.host, tls: Boolean(config.tlsCert), broker: config.broker === "memory" ? "memory" : "redis" }, `listening on ${config.tlsCert ? "https" : "http"}://${config.host}:${listener.port}`);

  let closing: Promise<void> | undefined;
  return {
    port: listener.port,
    development,
    tokens,
    broker,
    close() {
      closing ??= (async () => {
        logger.info("shutting down: telling clients to reconnect elsewhere");
        listener.stopAccepting();
        shutdown.abort(new ConnectError("server is shutting down; reconnect", Code.Unavailable));
        // One grace period for every stage: the mounts' goodbyes (each bounded by
        // the grace on its own) and the connections' close share the same deadline.
        const grace = new Promise<void>((resolve) => setTimeout(resolve, config.shutdownGraceMs).unref());
        await Promise.race([Promise.all(mounts.map((mount) => mount.shutdown?.())), grace]);
        await Promise.race([listener.closed(), grace]);
        listener.destroyAll();
        if (!options.broker) await broker.close();
        logger.info("shut down");
      })();
      return closing;
    },
  };
}

async function createBroker(config: Config, logger: Logger): Promise<Broker> {
  if (config.broker === "memory") {
    return createMemoryBroker({ retention: { maxCount: config.historyCount, maxAgeMs: config.historyAgeMs } });
  }
  const broker = await createRedisBroker({
    url: config.broker,
    prefix: config.redisPrefix,
    instanceId: config.instanceId,
    retention: { maxCount: config.historyCount, maxAgeMs: config.historyAgeMs },
    onStatus(status, error) {
      if (status === "up") logger.info("Redis reachable: the broker is ready");
      else logger.warn({ err: error }, "Redis unreachable: not ready, publishes answer unavailable; reconnecting");
    },
  });
  // The URL may hold a password: log where the broker is, never the URL itself.
  logger.info({ redisConnection: broker.connectionName, prefix: config.redisPrefix, ready: await broker.ready() }, "Redis broker started");
  return broker;
}

/** GET /healthz (the process runs), /readyz (the broker answers) and /metrics (Prometheus). */
function createHealthMount(broker: Broker, registry: ReturnType<typeof createMetrics>["registry"]): Mount {
  return {
    handle(req, res, url) {
      if (req.method !== "GET" && req.method !== "HEAD") return false;
      switch (url.pathname) {
        case "/healthz":
          sendText(res, 200, "ok\n");
          return true;
        case "/readyz":
          void broker.ready().then(
            (ready) => sendText(res, ready ? 200 : 503, ready ? "ready\n" : "broker unreachable\n"),
            () => sendText(res, 503, "broker unreachable\n"),
          );
          return true;
        case "/metrics":
          void registry.metrics().then((text) => sendText(res, 200, text, registry.contentType));
          return true;
        default:
          return false;
      }
    },
  };
}

/** GET /dev/token?user=alice&roles=publisher,worker[&cookie=1]: mints a token (and sets it as a cookie). Mounted only in development mode. */
function createDevTokenMount(tokens: TokenMinter): Mount {
  return {
    handle(req, res, url) {
      if (url.pathname !== "/dev/token" || req.method !== "GET") return false;
      const user = url.searchParams.get("user") ?? "";
      const roles = (url.searchParams.get("roles") ?? "").split(",").filter(Boolean);
      if (!/^[\x21-\x7e]{1,128}$/.test(user) || roles.some((r) => !/^[a-z_-]{1,32}$/.test(r))) {
        sendText(res, 400, "give ?user=<1 to 128 printable characters> and optionally &roles=publisher,worker\n");
        return true;
      }
      const ttlSeconds = 24 * 3600;
      void tokens.mint({ userId: user, roles, ttlSeconds }).then((token) => {
        // ?cookie=1 also sets the cookie browsers send on Connect, SSE and WebSocket
        // calls: HttpOnly (no script reads it), Secure (browsers allow it on
        // http://localhost), SameSite=Strict (no cross-site request carries it).
        if (url.searchParams.get("cookie") === "1") {
          res.setHeader("set-cookie", `access_token=${token}; Path=/; Max-Age=${ttlSeconds}; HttpOnly; Secure; SameSite=Strict`);
        }
        sendText(res, 200, token, "text/plain; charset=utf-8", true);
      });
      return true;
    },
  };
}

/** GET /: the demo page; GET /favicon.ico: 204, so browsers stop asking and logs stay free of 404s. */
function createDemoPageMount(): Mount {
  // src/server.ts runs from the sources (tests, tsx) or compiled as dist/src/server.js (npm start).
  const page = readFile(new URL(import.meta.url.includes("/dist/src/") ? "../../web/index.html" : "../web/index.html", import.meta.url));
  return {
    handle(req, res, url) {
      if (url.pathname === "/favicon.ico" && (req.method === "GET" || req.method === "HEAD")) {
        // No icon to serve: an empty answer browsers may cache for a day.
        writeHead(res, 204, { "cache-control": "public, max-age=86400" });
        res.end();
        return true;
      }
      if (url.pathname !== "/" || req.method !== "GET") return false;
      void page.then(
        (html) => {
          writeHead(res, 200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-cache" });
          res.end(html);
        },
        () => sendText(res, 404, "demo page missing\n"),
      );
      return true;
    },
  };
}

function sendText(res: HttpResponse, status: number, text: string, contentType = "text/plain; charset=utf-8", noStore = false): void {
  writeHead(res, status, { "content-type": contentType, ...(noStore ? { "cache-control": "no-store" } : {}) });
  res.end(text);
}
