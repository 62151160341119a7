import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { parseArgs } from "node:util";

/** Rivulet's configuration, parsed and validated in one place (flags override environment variables). */
export interface Config {
  readonly port: number;
  readonly host: string;
  /** "memory", a redis:// or rediss:// URL, or a redis+cluster:// or rediss+cluster:// list of seed nodes. */
  readonly broker: string;
  /** Prefix of every Redis key; instances that share data use the same one. */
  readonly redisPrefix: string;
  /** Redis replicas that must hold a published entry before the publish is acknowledged (WAIT); 0 = the master only. */
  readonly redisWait: number;
  /** Names this instance's Redis connections (`CLIENT LIST` shows `rivulet:<id>`); random when unset. */
  readonly instanceId: string | undefined;
  /** Processes serving the port (node:cluster); more than 1 needs a shared broker. `auto` is read as the number of cores. */
  readonly workers: number;
  readonly tlsCert: string | undefined;
  readonly tlsKey: string | undefined;
  /** HS256 secret; with authJwks unset too, undefined runs development mode. */
  readonly authSecret: string | undefined;
  /** JWKS file or https:// URL for RS256/ES256 tokens. */
  readonly authJwks: string | undefined;
  /** PEM CA certificates trusted for an https:// authJwks. */
  readonly authJwksCa: string | undefined;
  /** How long keys fetched from an https:// authJwks are cached. */
  readonly authJwksCacheMs: number;
  /** The `iss` every token must carry, when set. */
  readonly authIssuer: string | undefined;
  /** The `aud` every token must carry, when set. */
  readonly authAudience: string | undefined;
  /**
   * Access to a room that neither the room's name, the token's `rooms` claim
   * nor the authorize hook decides; undefined is "allow" in development mode
   * and "deny" otherwise (docs/security.md, "Rooms and access").
   */
  readonly roomsDefault: "allow" | "deny" | undefined;
  /** Base URL of the application's rivulet.authz.v1.RoomAuthorizer (Connect protocol); unset asks no backend. */
  readonly authorizeUrl: string | undefined;
  /** How long one call to the authorize hook may take before the room answers unavailable. */
  readonly authorizeTimeoutMs: number;
  /** Sent to the authorize hook as `Authorization: Bearer …`, so the backend knows Rivulet calls. */
  readonly authorizeToken: string | undefined;
  /** File of API keys for rivulet.admin.v1.AdminService: lines `<sha256 hex> <name>`. */
  readonly apiKeysFile: string | undefined;
  /** Origins allowed for CORS and WebSocket handshakes; empty means same-origin only. */
  readonly allowedOrigins: readonly string[];
  readonly historyCount: number;
  readonly historyAgeMs: number;
  readonly finishedTtlMs: number;
  readonly idempotencyTtlMs: number;
  /** How soon the users of an instance that died stop being present in rooms (Redis broker). */
  readonly presenceTtlMs: number;
  readonly subscriberBuffer: number;
  /** Unary calls (writes) per second per user, sustained. */
  readonly publishRate: number;
  /** Unary calls a user may burst after a quiet spell. */
  readonly publishBurst: number;
  /** Streams one user may hold open at once. */
  readonly streamsPerUser: number;
  /** How long one stream may stay open before it ends with unavailable (clients resume). */
  readonly streamLifetimeMs: number;
  /** HTTP/1.1: how long a client may take to send its request headers (and a new connection its first bytes). */
  readonly headersTimeoutMs: number;
  /** Time a client has to send its whole request, headers and body (HTTP/1.1 and HTTP/2). */
  readonly requestTimeoutMs: number;
  /** Most request headers (HTTP/1.1 and HTTP/2); more get 431. */
  readonly maxHeaders: number;
  /** Connections one serving process (each worker with --workers) holds at once; more are closed as they arrive. 0: no cap. */
  readonly maxConnections: number;
  /** A connection with no open call for this long is closed (HTTP/2 sessions, WebSockets). */
  readonly idleTimeoutMs: number;
  readonly maxMessageBytes: number;
  readonly maxTimeoutMs: number;
  readonly keepaliveMs: number;
  /** The SSE `retry:` sent when a stream opens: how long browsers wait before reconnecting. */
  readonly sseRetryMs: number;
  /** Gzip SSE responses for clients that accept it (docs/protocol.md "Compression"). */
  readonly sseCompression: boolean;
  readonly tokenIntervalMs: number;
  readonly completionStallMs: number;
  readonly llmUrl: string | undefined;
  readonly llmApiKey: string | undefined;
  readonly llmModel: string;
  readonly shutdownGraceMs: number;
  readonly logLevel: string;
  /** Largest WebSocket message (one ClientFrame) the server accepts; larger ones close with 1009. */
  readonly wsMaxPayloadBytes: number;
  /** Most calls open at once on one WebSocket; more end with resource_exhausted. */
  readonly wsMaxCalls: number;
  /** Bytes queued for one WebSocket above which its streams stop being read until it drains. */
  readonly wsMaxBufferedBytes: number;
  /** Whether `GET /ws` negotiates permessage-deflate (RFC 7692); off by default: fan-out pays CPU per message. */
  readonly wsCompression: boolean;
  /** Server messages shorter than this many bytes go uncompressed even on a socket that negotiated permessage-deflate. */
  readonly wsCompressionThresholdBytes: number;
}

type Kind = "string" | "integer" | "duration" | "bytes" | "list" | "switch";

/** One setting: its flag, environment variable, default and meaning. README's table mirrors this list. */
interface Setting {
  readonly key: keyof Config;
  readonly flag: string;
  readonly env: string;
  readonly kind: Kind;
  readonly fallback: string | undefined;
  readonly min?: number;
  readonly max?: number;
  /** An integer setting that also takes the word `auto`: the value it stands for. */
  readonly auto?: () => number;
  readonly help: string;
}

/**
 * The longest duration a flag that arms a timer may take: Node's timers hold
 * at most 2^31-1 ms (about 24.8 days) and fire a longer one after 1 ms, which
 * would turn a keep-alive into a busy loop or a grace period into none.
 */
const maxTimerMs = 576 * 3_600_000;

/**
 * Descriptors `--max-connections auto` leaves to everything but clients:
 * stdio, the event loop's own, Redis connections (three per process, more
 * with Redis Cluster), the IPC channel of a worker, log and TLS files, and
 * the one a worker needs to receive each connection the primary hands it
 * (node:cluster), so that a full worker can still take and close it.
 */
export const descriptorReserve = 256;

/**
 * `--max-connections auto`: the open-file soft limit (Linux: /proc/self/limits;
 * Node raises it to the hard limit at start, so read in the process it is that)
 * minus {@link descriptorReserve}, but never below half the limit (a small
 * limit still serves). 0 (no cap) where the limit cannot be read or is unlimited.
 */
export function connectionsFromOpenFileLimit(limits: string | undefined): number {
  const soft = /^Max open files\s+(\d+)/m.exec(limits ?? "")?.[1];
  if (soft === undefined) return 0;
  const limit = Number(soft);
  return limit - Math.min(descriptorReserve, Math.floor(limit / 2));
}

/** The text of /proc/self/limits; undefined where there is none (not Linux). */
export function readProcessLimits(): string | undefined {
  try {
    return readFileSync("/proc/self/limits", "utf8");
  } catch {
    return undefined; // not Linux: no cap, as before
  }
}

export const settings: readonly Setting[] = [
  { key: "port", flag: "port", env: "PORT", kind: "integer", fallback: "8080", min: 0, max: 65535, help: "TCP port; 0 picks a free one (logged)" },
  { key: "host", flag: "host", env: "HOST", kind: "string", fallback: "0.0.0.0", help: "address to listen on" },
  {
    key: "broker",
    flag: "broker",
    env: "RIVULET_BROKER",
    kind: "string",
    fallback: "memory",
    help: "memory, redis://host:port to share Redis Streams between instances, or redis+cluster://host:port[,host:port…] for Redis Cluster",
  },
  {
    key: "redisPrefix",
    flag: "redis-prefix",
    env: "RIVULET_REDIS_PREFIX",
    kind: "string",
    fallback: "rivulet:",
    help: "prefix of every Redis key (no braces); instances sharing data use the same one",
  },
  {
    key: "redisWait",
    flag: "redis-wait",
    env: "RIVULET_REDIS_WAIT",
    kind: "integer",
    fallback: "0",
    min: 0,
    max: 16,
    help: "Redis replicas that must have a published message before it is acknowledged (WAIT, 1 s); 0 = the master only",
  },
  {
    key: "instanceId",
    flag: "instance-id",
    env: "RIVULET_INSTANCE_ID",
    kind: "string",
    fallback: undefined,
    help: "names this instance's Redis connections rivulet:<id>; random when unset",
  },
  {
    key: "workers",
    flag: "workers",
    env: "RIVULET_WORKERS",
    kind: "integer",
    fallback: "1",
    min: 1,
    max: 1024,
    auto: availableParallelism,
    help: "processes sharing the port, one per core with auto (needs a Redis broker when more than 1)",
  },
  {
    key: "tlsCert",
    flag: "tls-cert",
    env: "RIVULET_TLS_CERT",
    kind: "string",
    fallback: undefined,
    help: "PEM certificate file; with --tls-key serves TLS (ALPN h2, http/1.1)",
  },
  { key: "tlsKey", flag: "tls-key", env: "RIVULET_TLS_KEY", kind: "string", fallback: undefined, help: "PEM private key file" },
  {
    key: "authSecret",
    flag: "auth-secret",
    env: "RIVULET_AUTH_SECRET",
    kind: "string",
    fallback: undefined,
    help: "HS256 secret for bearer tokens; unset runs development mode",
  },
  {
    key: "authJwks",
    flag: "auth-jwks",
    env: "RIVULET_AUTH_JWKS",
    kind: "string",
    fallback: undefined,
    help: "JWKS file or https:// URL for RS256/ES256 tokens (with or instead of --auth-secret)",
  },
  {
    key: "authJwksCa",
    flag: "auth-jwks-ca",
    env: "RIVULET_AUTH_JWKS_CA",
    kind: "string",
    fallback: undefined,
    help: "PEM CA file trusted for an https:// --auth-jwks (private CAs)",
  },
  {
    key: "authJwksCacheMs",
    flag: "auth-jwks-cache",
    env: "RIVULET_AUTH_JWKS_CACHE",
    kind: "duration",
    fallback: "10m",
    min: 1000,
    help: "how long keys fetched from --auth-jwks are cached",
  },
  { key: "authIssuer", flag: "auth-issuer", env: "RIVULET_AUTH_ISSUER", kind: "string", fallback: undefined, help: "the iss claim every token must carry" },
  {
    key: "authAudience",
    flag: "auth-audience",
    env: "RIVULET_AUTH_AUDIENCE",
    kind: "string",
    fallback: undefined,
    help: "the aud claim every token must carry",
  },
  {
    key: "allowedOrigins",
    flag: "allowed-origins",
    env: "RIVULET_ALLOWED_ORIGINS",
    kind: "list",
    fallback: "",
    help: "comma-separated origins allowed for CORS and WebSocket",
  },
  {
    key: "roomsDefault",
    flag: "rooms-default",
    env: "RIVULET_ROOMS_DEFAULT",
    kind: "string",
    fallback: undefined,
    help: "allow or deny: access to a room no name, token claim or --authorize-url decides (allow in development mode, else deny)",
  },
  {
    key: "authorizeUrl",
    flag: "authorize-url",
    env: "RIVULET_AUTHORIZE_URL",
    kind: "string",
    fallback: undefined,
    help: "base URL of your backend's rivulet.authz.v1.RoomAuthorizer (Connect, JSON), asked who may read and write rooms",
  },
  {
    key: "authorizeTimeoutMs",
    flag: "authorize-timeout",
    env: "RIVULET_AUTHORIZE_TIMEOUT",
    kind: "duration",
    fallback: "2s",
    min: 10,
    max: 60_000,
    help: "how long --authorize-url may take to answer before the call gets unavailable",
  },
  {
    key: "authorizeToken",
    flag: "authorize-token",
    env: "RIVULET_AUTHORIZE_TOKEN",
    kind: "string",
    fallback: undefined,
    help: "bearer token sent to --authorize-url so your backend knows the caller is Rivulet",
  },
  {
    key: "apiKeysFile",
    flag: "api-keys-file",
    env: "RIVULET_API_KEYS_FILE",
    kind: "string",
    fallback: undefined,
    help: "API keys for rivulet.admin.v1.AdminService: lines <sha256 hex> <name>",
  },
  {
    key: "historyCount",
    flag: "history-count",
    env: "RIVULET_HISTORY_COUNT",
    kind: "integer",
    fallback: "1000",
    min: 1,
    max: 1_000_000,
    help: "messages kept per room and per user's notifications",
  },
  { key: "historyAgeMs", flag: "history-age", env: "RIVULET_HISTORY_AGE", kind: "duration", fallback: "24h", min: 1000, help: "how long messages are kept" },
  {
    key: "finishedTtlMs",
    flag: "finished-ttl",
    env: "RIVULET_FINISHED_TTL",
    kind: "duration",
    fallback: "10m",
    min: 1000,
    help: "how long finished jobs and completions stay readable",
  },
  {
    key: "idempotencyTtlMs",
    flag: "idempotency-ttl",
    env: "RIVULET_IDEMPOTENCY_TTL",
    kind: "duration",
    fallback: "24h",
    min: 1000,
    help: "how long idempotency keys are remembered",
  },
  {
    key: "presenceTtlMs",
    flag: "presence-ttl",
    env: "RIVULET_PRESENCE_TTL",
    kind: "duration",
    fallback: "30s",
    min: 1000,
    max: 3600_000,
    help: "how soon the users of an instance that died stop being present in rooms (Redis)",
  },
  {
    key: "subscriberBuffer",
    flag: "subscriber-buffer",
    env: "RIVULET_SUBSCRIBER_BUFFER",
    kind: "integer",
    fallback: "1024",
    min: 1,
    max: 1_000_000,
    help: "live messages held for a slow subscriber before resource_exhausted",
  },
  {
    key: "publishRate",
    flag: "publish-rate",
    env: "RIVULET_PUBLISH_RATE",
    kind: "integer",
    fallback: "100",
    min: 1,
    max: 1_000_000,
    help: "unary calls (writes, signals, History pages) per second per user, sustained; more get resource_exhausted",
  },
  {
    key: "publishBurst",
    flag: "publish-burst",
    env: "RIVULET_PUBLISH_BURST",
    kind: "integer",
    fallback: "200",
    min: 1,
    max: 1_000_000,
    help: "writes a user may burst after a quiet spell",
  },
  {
    key: "streamsPerUser",
    flag: "streams-per-user",
    env: "RIVULET_STREAMS_PER_USER",
    kind: "integer",
    fallback: "100",
    min: 1,
    max: 1_000_000,
    help: "streams one user may hold open at once, all transports together",
  },
  {
    key: "streamLifetimeMs",
    flag: "stream-lifetime",
    env: "RIVULET_STREAM_LIFETIME",
    kind: "duration",
    fallback: "1h",
    min: 1000,
    help: "longest a stream stays open; then it ends with unavailable and the client resumes",
  },
  {
    key: "headersTimeoutMs",
    flag: "headers-timeout",
    env: "RIVULET_HEADERS_TIMEOUT",
    kind: "duration",
    fallback: "10s",
    min: 100,
    max: 300_000,
    help: "time a client has to send its request headers",
  },
  {
    key: "requestTimeoutMs",
    flag: "request-timeout",
    env: "RIVULET_REQUEST_TIMEOUT",
    kind: "duration",
    fallback: "60s",
    min: 100,
    max: 3_600_000,
    help: "time a client has to send its whole request (a stream's response may last longer)",
  },
  {
    key: "maxHeaders",
    flag: "max-headers",
    env: "RIVULET_MAX_HEADERS",
    kind: "integer",
    fallback: "100",
    min: 16,
    max: 2000,
    help: "most request headers; more get 431",
  },
  {
    key: "maxConnections",
    flag: "max-connections",
    env: "RIVULET_MAX_CONNECTIONS",
    kind: "integer",
    fallback: "auto",
    min: 0,
    max: 10_000_000,
    auto: () => connectionsFromOpenFileLimit(readProcessLimits()),
    help: `connections each serving process (each worker) holds; more are closed at once. auto: the open-file limit minus ${descriptorReserve}; 0: no cap`,
  },
  {
    key: "idleTimeoutMs",
    flag: "idle-timeout",
    env: "RIVULET_IDLE_TIMEOUT",
    kind: "duration",
    fallback: "5m",
    min: 100,
    max: maxTimerMs,
    help: "closes an HTTP/2 connection or WebSocket with no open call for this long",
  },
  {
    key: "maxMessageBytes",
    flag: "max-message-bytes",
    env: "RIVULET_MAX_MESSAGE_BYTES",
    kind: "bytes",
    fallback: "1MiB",
    min: 1024,
    max: 64 * 1024 * 1024,
    help: "largest request message, after decompression",
  },
  {
    key: "maxTimeoutMs",
    flag: "max-timeout",
    env: "RIVULET_MAX_TIMEOUT",
    kind: "duration",
    fallback: "24h",
    min: 1000,
    max: maxTimerMs,
    help: "largest deadline a client may ask for; longer ones are lowered to it (at most 576h: Node's timers reach 24.8 days)",
  },
  {
    key: "keepaliveMs",
    flag: "keepalive",
    env: "RIVULET_KEEPALIVE",
    kind: "duration",
    fallback: "15s",
    min: 100,
    max: maxTimerMs,
    help: "SSE comment and WebSocket ping interval",
  },
  {
    key: "sseRetryMs",
    flag: "sse-retry",
    env: "RIVULET_SSE_RETRY",
    kind: "duration",
    fallback: "2s",
    min: 0,
    max: 3_600_000,
    help: "SSE reconnection delay sent to clients (retry:)",
  },
  {
    key: "sseCompression",
    flag: "sse-compression",
    env: "RIVULET_SSE_COMPRESSION",
    kind: "switch",
    fallback: "off",
    help: "on: gzip SSE responses for clients that accept it (about 80 KiB more per connection)",
  },
  {
    key: "tokenIntervalMs",
    flag: "token-interval",
    env: "RIVULET_TOKEN_INTERVAL",
    kind: "duration",
    fallback: "30ms",
    min: 0,
    max: maxTimerMs,
    help: "pace of the embedded completion model",
  },
  {
    key: "completionStallMs",
    flag: "completion-stall",
    env: "RIVULET_COMPLETION_STALL",
    kind: "duration",
    fallback: "60s",
    min: 1000,
    max: maxTimerMs,
    help: "a completion with no new token for this long ends with finish_reason error (its instance died or its model stalled)",
  },
  {
    key: "llmUrl",
    flag: "llm-url",
    env: "RIVULET_LLM_URL",
    kind: "string",
    fallback: undefined,
    help: "base URL of an OpenAI-compatible API; unset uses the embedded model",
  },
  { key: "llmApiKey", flag: "llm-api-key", env: "RIVULET_LLM_API_KEY", kind: "string", fallback: undefined, help: "API key for --llm-url" },
  { key: "llmModel", flag: "llm-model", env: "RIVULET_LLM_MODEL", kind: "string", fallback: "gpt-4o-mini", help: "default model for --llm-url" },
  {
    key: "shutdownGraceMs",
    flag: "shutdown-grace",
    env: "RIVULET_SHUTDOWN_GRACE",
    kind: "duration",
    fallback: "10s",
    min: 0,
    max: maxTimerMs,
    help: "how long SIGTERM waits for connections to drain",
  },
  { key: "logLevel", flag: "log-level", env: "RIVULET_LOG_LEVEL", kind: "string", fallback: "info", help: "trace, debug, info, warn, error or fatal" },
  {
    key: "wsMaxPayloadBytes",
    flag: "ws-max-payload",
    env: "RIVULET_WS_MAX_PAYLOAD",
    kind: "bytes",
    fallback: "1MiB",
    min: 1024,
    max: 64 * 1024 * 1024,
    help: "largest WebSocket frame a client may send (ws's own default is 100 MiB)",
  },
  {
    key: "wsMaxCalls",
    flag: "ws-max-calls",
    env: "RIVULET_WS_MAX_CALLS",
    kind: "integer",
    fallback: "100",
    min: 1,
    max: 100_000,
    help: "calls open at once on one WebSocket",
  },
  {
    key: "wsMaxBufferedBytes",
    flag: "ws-max-buffered",
    env: "RIVULET_WS_MAX_BUFFERED",
    kind: "bytes",
    fallback: "1MiB",
    min: 64 * 1024,
    max: 256 * 1024 * 1024,
    help: "bytes queued for a slow WebSocket before its streams pause",
  },
  {
    key: "wsCompression",
    flag: "ws-compression",
    env: "RIVULET_WS_COMPRESSION",
    kind: "switch",
    fallback: "off",
    help: "on: negotiate permessage-deflate on WebSockets (costs CPU per fanned-out message)",
  },
  {
    key: "wsCompressionThresholdBytes",
    flag: "ws-compression-threshold",
    env: "RIVULET_WS_COMPRESSION_THRESHOLD",
    kind: "bytes",
    fallback: "1KiB",
    min: 0,
    max: 64 * 1024 * 1024,
    help: "smallest WebSocket message compressed when --ws-compression is on",
  },
];

/** A configuration error: the message names the flag and what is wrong. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

/**
 * Reads flags (`--port 8080` or `--port=8080`) and environment variables,
 * applies defaults and validates every value. Throws ConfigError.
 */
export function loadConfig(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): Config {
  const options = Object.fromEntries(settings.map((s) => [s.flag, { type: "string" as const }]));
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({ args: [...argv], options: { ...options, help: { type: "boolean" } }, strict: true }).values;
  } catch (error) {
    throw new ConfigError(error instanceof Error ? error.message : String(error));
  }
  const config: Record<string, unknown> = {};
  for (const setting of settings) {
    const flagValue = values[setting.flag];
    const raw = typeof flagValue === "string" ? flagValue : (env[setting.env] ?? setting.fallback);
    config[setting.key] = raw === undefined ? undefined : parseValue(setting, raw);
  }
  const result = config as unknown as Config;
  if ((result.tlsCert === undefined) !== (result.tlsKey === undefined)) {
    throw new ConfigError("--tls-cert and --tls-key go together");
  }
  if (result.broker !== "memory" && !/^rediss?(\+cluster)?:\/\//.test(result.broker)) {
    throw new ConfigError(`--broker must be "memory" or a redis:// URL (redis+cluster:// for Redis Cluster), not "${result.broker}"`);
  }
  if (result.workers > 1 && result.broker === "memory") {
    // Each worker would have its own history and subscribers: a client landing on another worker would miss messages.
    throw new ConfigError(`--workers ${result.workers} needs a shared broker: pass --broker redis://… (the memory broker lives in one process)`);
  }
  if (/[{}]/.test(result.redisPrefix)) {
    throw new ConfigError(`--redis-prefix must not contain braces (they are Redis Cluster hash tags), not "${result.redisPrefix}"`);
  }
  if (result.instanceId !== undefined && !/^[A-Za-z0-9._:-]{1,64}$/.test(result.instanceId)) {
    throw new ConfigError(`--instance-id must be 1 to 64 letters, digits, '.', '_', ':' or '-', not "${result.instanceId}"`);
  }
  if (result.authJwks !== undefined && /^[a-z][a-z0-9+.-]*:\/\//i.test(result.authJwks) && !result.authJwks.startsWith("https://")) {
    throw new ConfigError(`--auth-jwks must be a file or an https:// URL (keys over plain HTTP could be forged), not "${result.authJwks}"`);
  }
  if (result.authJwksCa !== undefined && !result.authJwks?.startsWith("https://")) {
    throw new ConfigError("--auth-jwks-ca needs an https:// --auth-jwks");
  }
  if (result.roomsDefault !== undefined && result.roomsDefault !== "allow" && result.roomsDefault !== "deny") {
    throw new ConfigError(`--rooms-default must be "allow" or "deny", not "${String(result.roomsDefault)}"`);
  }
  if (result.authorizeUrl !== undefined && !/^https?:\/\/[^/\s]+(\/\S*)?$/.test(result.authorizeUrl)) {
    throw new ConfigError(`--authorize-url must be an http:// or https:// URL, not "${result.authorizeUrl}"`);
  }
  if (!["trace", "debug", "info", "warn", "error", "fatal", "silent"].includes(result.logLevel)) {
    throw new ConfigError(`--log-level must be trace, debug, info, warn, error or fatal, not "${result.logLevel}"`);
  }
  for (const origin of result.allowedOrigins) {
    if (origin === "*") {
      // Browsers send cookies with every request: a wildcard would let any site act as the user.
      throw new ConfigError('--allowed-origins: "*" would let every web site use your users\' cookies; list the origins instead');
    }
    if (!/^https?:\/\/[^/\s]+$/.test(origin)) {
      throw new ConfigError(`--allowed-origins: "${origin}" is not an origin such as https://example.com`);
    }
  }
  return result;
}

/** The text of `--help`. */
export function usage(): string {
  const lines = settings.map((s) => `  --${s.flag.padEnd(20)} ${s.env.padEnd(26)} ${s.help}${s.fallback ? ` (default ${s.fallback})` : ""}`);
  return `Usage: rivulet [options]\n\n  flag                   environment variable\n${lines.join("\n")}\n`;
}

function parseValue(setting: Setting, raw: string): unknown {
  const fail = (what: string) => new ConfigError(`--${setting.flag} (${setting.env}): ${what}, got "${raw}"`);
  let value: number;
  switch (setting.kind) {
    case "string":
      if (raw === "") throw fail("must not be empty");
      return raw;
    case "list":
      return raw
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean);
    case "switch":
      if (raw !== "on" && raw !== "off") throw fail('must be "on" or "off"');
      return raw === "on";
    case "integer":
      if (raw === "auto" && setting.auto) value = setting.auto();
      else if (!/^\d+$/.test(raw)) throw fail(setting.auto ? 'must be a whole number or "auto"' : "must be a whole number");
      else value = Number(raw);
      break;
    case "duration": {
      const match = /^(\d+)(ms|s|m|h)?$/.exec(raw);
      if (!match) throw fail("must be a duration such as 500ms, 15s, 10m or 24h");
      value = Number(match[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match[2] ?? "ms"]!;
      break;
    }
    case "bytes": {
      const match = /^(\d+)(B|KiB|MiB)?$/.exec(raw);
      if (!match) throw fail("must be a size such as 65536, 64KiB or 1MiB");
      value = Number(match[1]) * { B: 1, KiB: 1024, MiB: 1024 * 1024 }[match[2] ?? "B"]!;
      break;
    }
  }
  if (setting.min !== undefined && value < setting.min) throw fail(`must be at least ${inUnitOf(setting.kind, setting.min)}`);
  if (setting.max !== undefined && value > setting.max) throw fail(`must be at most ${inUnitOf(setting.kind, setting.max)}`);
  return value;
}

/** A bound as the flag is written (`1s`, `64KiB`), not in the milliseconds or bytes it is kept in: the largest unit that divides it. */
function inUnitOf(kind: Kind, value: number): string {
  const units: readonly (readonly [string, number])[] =
    kind === "duration"
      ? [
          ["h", 3_600_000],
          ["m", 60_000],
          ["s", 1000],
          ["ms", 1],
        ]
      : kind === "bytes"
        ? [
            ["MiB", 1024 * 1024],
            ["KiB", 1024],
            ["", 1],
          ]
        : [["", 1]];
  const [unit, size] = units.find(([, size]) => value !== 0 && value % size === 0) ?? units[units.length - 1]!;
  return `${value / size}${unit}`;
}
