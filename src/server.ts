import { setMaxListeners } from "node:events";
import { Code, ConnectError, type ConnectRouter, type Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { Broker } from "./broker/broker.js";
import { createMemoryBroker } from "./broker/memory.js";
import { createRedisBroker } from "./broker/redis/redis-broker.js";
import { createTopicHub } from "./broker/topic-hub.js";
import { createAuthInterceptor } from "./auth/interceptor.js";
import { loadApiKeys, noApiKeys } from "./auth/api-keys.js";
import { RoomAccess } from "./auth/room-access.js";
import { createRoomAuthorizer } from "./auth/room-authorizer.js";
import { createDevTokenMount } from "./auth/dev-token-mount.js";
import { createJwks } from "./auth/jwks.js";
import { loadDevelopmentSecret, developmentSecretPath } from "./auth/development-secret.js";
import { createRandomSecret, createHmacTokens, createTokenVerifier, type TokenMinter } from "./auth/tokens.js";
import { OpenCalls } from "./call/open-calls.js";
import { createMethodRegistry, type ServiceRegistration } from "./call/method-registry.js";
import { createRpcStreamBridge } from "./bridge/rpc/stream-bridge.js";
import { createRpcUnaryBridge } from "./bridge/rpc/unary-bridge.js";
import { createSseBridge } from "./bridge/sse/bridge.js";
import { createWebSocketBridge } from "./bridge/websocket/bridge.js";
import type { HttpRequest, HttpResponse, Mount, MountContext } from "./http/mount.js";
import type { Config } from "./config.js";
import { applyCors } from "./http/cors.js";
import { listen } from "./http/listen.js";
import { refuseSocket } from "./http/refuse-socket.js";
import { createDemoPageMount } from "./http/demo-page.js";
import { createHealthMount } from "./http/health.js";
import { requestCompression } from "./http/request-compression.js";
import type { Logger } from "./log.js";
import { clampDeadline } from "./limits/clamp-deadline.js";
import { createStreamGuardInterceptor } from "./limits/stream-guard.js";
import { createUserLimitsInterceptor } from "./limits/user-limits.js";
import { createMetrics } from "./metrics.js";
import { createWorkerMetrics } from "./cluster-metrics.js";
import { AdminService } from "../gen/rivulet/admin/v1/admin_pb.js";
import { ChatService } from "../gen/rivulet/chat/v1/chat_pb.js";
import { NotificationService } from "../gen/rivulet/notify/v1/notify_pb.js";
import { ProgressService } from "../gen/rivulet/progress/v1/progress_pb.js";
import { createAdminService } from "./services/admin.js";
import { createChatService } from "./services/chat.js";
import { createGrpcServices } from "./grpc/grpc-services.js";
import { createEmbeddedGenerator, createOpenAiGenerator } from "./services/generator.js";
import { createNotificationService } from "./services/notify.js";
import { createProgressService } from "./services/progress.js";
import { newId, type ServiceDeps } from "./services/service-deps.js";

export interface ServerOptions {
  readonly config: Config;
  readonly logger: Logger;
  /** The broker to use instead of the one `config.broker` names (tests). */
  readonly broker?: Broker;
  /** More services to mount beside Rivulet's own (tests mount rivulet.testing.v1). */
  readonly extraServices?: (deps: ServiceDeps) => readonly ServiceRegistration[];
  /** Its number among `--workers` (src/workers.ts), in a cluster worker: labels its metrics, and /metrics shows every worker's. */
  readonly worker?: number;
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
  const metrics = createMetrics(options.worker);
  const metricsSource = options.worker === undefined ? undefined : createWorkerMetrics(metrics.registry);
  const shutdown = new AbortController();
  // Every call's context listens for shutdown: thousands of listeners are expected.
  setMaxListeners(0, shutdown.signal);
  // Read before anything connects: a bad line stops the start (ConfigError naming the line).
  const apiKeys = config.apiKeysFile === undefined ? noApiKeys : await loadApiKeys(config.apiKeysFile);
  // One id names this instance to the Redis broker (presence, wake-ups) and to the server API (Info, Disconnect).
  const instanceId = config.instanceId ?? newId();
  const broker = options.broker ?? (await createBroker(config, instanceId, logger));

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
    logger.warn(
      `DEVELOPMENT MODE: no --auth-secret or --auth-jwks given. Tokens are signed with ${where} and anyone can mint one at GET /dev/token. Never run this way in production.`,
    );
  }

  const calls = new OpenCalls();
  const roomsDefault = config.roomsDefault ?? (development ? "allow" : "deny");
  const access = new RoomAccess({
    defaultAllow: roomsDefault === "allow",
    authorizer:
      config.authorizeUrl === undefined
        ? undefined
        : createRoomAuthorizer({
            url: config.authorizeUrl,
            timeoutMs: config.authorizeTimeoutMs,
            token: config.authorizeToken,
            onFailure: (error, question) => logger.warn({ err: error, ...question }, "the room authorizer (--authorize-url) failed: the call got unavailable"),
          }),
  });
  logger.info(
    // The host only: the URL may carry credentials.
    { roomsDefault, authorizeHost: config.authorizeUrl === undefined ? undefined : new URL(config.authorizeUrl).host },
    `rooms: user-limited names, then the token's rooms claim, ${config.authorizeUrl === undefined ? "" : "then --authorize-url, "}else ${roomsDefault}`,
  );
  const deps: ServiceDeps = {
    broker,
    hub: createTopicHub(broker),
    calls,
    access,
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
    {
      service: AdminService,
      impl: createAdminService(deps, {
        instanceId,
        connections: async () =>
          Object.fromEntries(
            (await metrics.connections.get()).values.filter(({ value }) => value > 0).map(({ labels, value }) => [String(labels.transport), value]),
          ),
        logger,
      }),
    },
    ...(options.extraServices?.(deps) ?? []),
  ];
  // gRPC health and reflection: served by connect-node only (the bridges
  // carry Rivulet's services; HTTP probes have /readyz), and without
  // credentials. Health says NOT_SERVING from the start of a shutdown.
  const grpc = createGrpcServices(
    registrations.map(({ service }) => service),
    async () => !shutdown.signal.aborted && (await broker.ready()),
  );
  const interceptors: Interceptor[] = [
    createStreamGuardInterceptor(logger, calls),
    createAuthInterceptor(verifier, grpc.publicServiceNames, apiKeys),
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
  const mounts: Mount[] = [
    createHealthMount(() => broker.ready(), metricsSource ?? metrics.registry),
    ...(development ? [createDevTokenMount(tokens)] : []),
    createWebSocketBridge(context),
    createSseBridge(context),
    createRpcStreamBridge(context),
    createRpcUnaryBridge(context),
    createDemoPageMount(),
  ];

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
      refuseSocket(socket, 404);
    },
    onConnection: (transport, delta) => metrics.connections.inc({ transport }, delta),
    maxConnections: config.maxConnections,
    onRefused: refusedConnectionsLog(config.maxConnections, logger, () => metrics.connectionsRefused.inc({ reason: "max_connections" })),
  });
  // A worker leaves "listening on" to its primary, which says it once every worker listens (src/workers.ts):
  // whoever waits for that line (a supervisor, a test) then reaches a whole service.
  if (options.worker === undefined) {
    logger.info(
      { port: listener.port, host: config.host, tls: Boolean(config.tlsCert), broker: config.broker === "memory" ? "memory" : "redis" },
      `listening on ${config.tlsCert ? "https" : "http"}://${config.host}:${listener.port}`,
    );
  }

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
        metricsSource?.close();
        logger.info("shut down");
      })();
      return closing;
    },
  };
}

async function createBroker(config: Config, instanceId: string, logger: Logger): Promise<Broker> {
  if (config.broker === "memory") {
    return createMemoryBroker({ retention: { maxCount: config.historyCount, maxAgeMs: config.historyAgeMs } });
  }
  const broker = await createRedisBroker({
    url: config.broker,
    prefix: config.redisPrefix,
    instanceId,
    waitReplicas: config.redisWait,
    retention: { maxCount: config.historyCount, maxAgeMs: config.historyAgeMs },
    presenceTtlMs: config.presenceTtlMs,
    onStatus(status, error) {
      if (status === "up") logger.info("Redis reachable: the broker is ready");
      else logger.warn({ err: error }, "Redis unreachable: not ready, publishes answer unavailable; reconnecting");
    },
  });
  // The URL may hold a password: log where the broker is, never the URL itself.
  logger.info({ redisConnection: broker.connectionName, prefix: config.redisPrefix, ready: await broker.ready() }, "Redis broker started");
  return broker;
}

/** A full server says so at most this often, with how many it refused since it last did: a flood of refusals is one line a minute. */
const refusedLogIntervalMs = 60_000;

/** What a connection refused for --max-connections does: counts it, and warns, rate-limited. */
function refusedConnectionsLog(maxConnections: number, logger: Logger, count: () => void): () => void {
  let refused = 0;
  let loggedAt = -Infinity;
  return () => {
    count();
    refused++;
    const now = Date.now();
    if (now - loggedAt < refusedLogIntervalMs) return;
    logger.warn({ maxConnections, refused }, `${maxConnections} connections open: closing new ones as they arrive (--max-connections)`);
    loggedAt = now;
    refused = 0;
  };
}
