import { parseArgs } from "node:util";

/** Rivulet's configuration, parsed and validated in one place (flags override environment variables). */
export interface Config {
  readonly port: number;
  readonly host: string;
  /** "memory", or a redis:// or rediss:// URL. */
  readonly broker: string;
  readonly tlsCert: string | undefined;
  readonly tlsKey: string | undefined;
  /** HS256 secret; undefined runs development mode. */
  readonly authSecret: string | undefined;
  /** Origins allowed for CORS and WebSocket handshakes; empty means same-origin only. */
  readonly allowedOrigins: readonly string[];
  readonly historyCount: number;
  readonly historyAgeMs: number;
  readonly finishedTtlMs: number;
  readonly idempotencyTtlMs: number;
  readonly subscriberBuffer: number;
  readonly maxMessageBytes: number;
  readonly maxTimeoutMs: number;
  readonly keepaliveMs: number;
  readonly tokenIntervalMs: number;
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
  /** A WebSocket with no open call for this long is closed (1000). */
  readonly wsIdleTimeoutMs: number;
}

type Kind = "string" | "integer" | "duration" | "bytes" | "list";

/** One setting: its flag, environment variable, default and meaning. README's table mirrors this list. */
interface Setting {
  readonly key: keyof Config;
  readonly flag: string;
  readonly env: string;
  readonly kind: Kind;
  readonly fallback: string | undefined;
  readonly min?: number;
  readonly max?: number;
  readonly help: string;
}

export const settings: readonly Setting[] = [
  { key: "port", flag: "port", env: "PORT", kind: "integer", fallback: "8080", min: 0, max: 65535, help: "TCP port; 0 picks a free one (logged)" },
  { key: "host", flag: "host", env: "HOST", kind: "string", fallback: "0.0.0.0", help: "address to listen on" },
  { key: "broker", flag: "broker", env: "RIVULET_BROKER", kind: "string", fallback: "memory", help: "memory, or redis://host:port to share Redis Streams between instances" },
  { key: "tlsCert", flag: "tls-cert", env: "RIVULET_TLS_CERT", kind: "string", fallback: undefined, help: "PEM certificate file; with --tls-key serves TLS (ALPN h2, http/1.1)" },
  { key: "tlsKey", flag: "tls-key", env: "RIVULET_TLS_KEY", kind: "string", fallback: undefined, help: "PEM private key file" },
  { key: "authSecret", flag: "auth-secret", env: "RIVULET_AUTH_SECRET", kind: "string", fallback: undefined, help: "HS256 secret for bearer tokens; unset runs development mode" },
  { key: "allowedOrigins", flag: "allowed-origins", env: "RIVULET_ALLOWED_ORIGINS", kind: "list", fallback: "", help: "comma-separated origins allowed for CORS and WebSocket" },
  { key: "historyCount", flag: "history-count", env: "RIVULET_HISTORY_COUNT", kind: "integer", fallback: "1000", min: 1, max: 1_000_000, help: "messages kept per room and per user's notifications" },
  { key: "historyAgeMs", flag: "history-age", env: "RIVULET_HISTORY_AGE", kind: "duration", fallback: "24h", min: 1000, help: "how long messages are kept" },
  { key: "finishedTtlMs", flag: "finished-ttl", env: "RIVULET_FINISHED_TTL", kind: "duration", fallback: "10m", min: 1000, help: "how long finished jobs and completions stay readable" },
  { key: "idempotencyTtlMs", flag: "idempotency-ttl", env: "RIVULET_IDEMPOTENCY_TTL", kind: "duration", fallback: "24h", min: 1000, help: "how long idempotency keys are remembered" },
  { key: "subscriberBuffer", flag: "subscriber-buffer", env: "RIVULET_SUBSCRIBER_BUFFER", kind: "integer", fallback: "1024", min: 1, max: 1_000_000, help: "live messages held for a slow subscriber before resource_exhausted" },
  { key: "maxMessageBytes", flag: "max-message-bytes", env: "RIVULET_MAX_MESSAGE_BYTES", kind: "bytes", fallback: "1MiB", min: 1024, max: 64 * 1024 * 1024, help: "largest request message, after decompression" },
  { key: "maxTimeoutMs", flag: "max-timeout", env: "RIVULET_MAX_TIMEOUT", kind: "duration", fallback: "24h", min: 1000, help: "largest deadline a client may ask for" },
  { key: "keepaliveMs", flag: "keepalive", env: "RIVULET_KEEPALIVE", kind: "duration", fallback: "15s", min: 100, help: "SSE comment and WebSocket ping interval" },
  { key: "tokenIntervalMs", flag: "token-interval", env: "RIVULET_TOKEN_INTERVAL", kind: "duration", fallback: "30ms", min: 0, help: "pace of the embedded completion model" },
  { key: "llmUrl", flag: "llm-url", env: "RIVULET_LLM_URL", kind: "string", fallback: undefined, help: "base URL of an OpenAI-compatible API; unset uses the embedded model" },
  { key: "llmApiKey", flag: "llm-api-key", env: "RIVULET_LLM_API_KEY", kind: "string", fallback: undefined, help: "API key for --llm-url" },
  { key: "llmModel", flag: "llm-model", env: "RIVULET_LLM_MODEL", kind: "string", fallback: "gpt-4o-mini", help: "default model for --llm-url" },
  { key: "shutdownGraceMs", flag: "shutdown-grace", env: "RIVULET_SHUTDOWN_GRACE", kind: "duration", fallback: "10s", min: 0, help: "how long SIGTERM waits for connections to drain" },
  { key: "logLevel", flag: "log-level", env: "RIVULET_LOG_LEVEL", kind: "string", fallback: "info", help: "trace, debug, info, warn, error or fatal" },
  { key: "wsMaxPayloadBytes", flag: "ws-max-payload", env: "RIVULET_WS_MAX_PAYLOAD", kind: "bytes", fallback: "1MiB", min: 1024, max: 64 * 1024 * 1024, help: "largest WebSocket frame a client may send (ws's own default is 100 MiB)" },
  { key: "wsMaxCalls", flag: "ws-max-calls", env: "RIVULET_WS_MAX_CALLS", kind: "integer", fallback: "100", min: 1, max: 100_000, help: "calls open at once on one WebSocket" },
  { key: "wsMaxBufferedBytes", flag: "ws-max-buffered", env: "RIVULET_WS_MAX_BUFFERED", kind: "bytes", fallback: "1MiB", min: 64 * 1024, max: 256 * 1024 * 1024, help: "bytes queued for a slow WebSocket before its streams pause" },
  { key: "wsIdleTimeoutMs", flag: "ws-idle-timeout", env: "RIVULET_WS_IDLE_TIMEOUT", kind: "duration", fallback: "5m", min: 1000, help: "closes a WebSocket with no open call for this long" },
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
    const raw = typeof flagValue === "string" ? flagValue : env[setting.env] ?? setting.fallback;
    config[setting.key] = raw === undefined ? undefined : parseValue(setting, raw);
  }
  const result = config as unknown as Config;
  if ((result.tlsCert === undefined) !== (result.tlsKey === undefined)) {
    throw new ConfigError("--tls-cert and --tls-key go together");
  }
  if (result.broker !== "memory" && !/^rediss?:\/\//.test(result.broker)) {
    throw new ConfigError(`--broker must be "memory" or a redis:// URL, not "${result.broker}"`);
  }
  if (!["trace", "debug", "info", "warn", "error", "fatal", "silent"].includes(result.logLevel)) {
    throw new ConfigError(`--log-level must be trace, debug, info, warn, error or fatal, not "${result.logLevel}"`);
  }
  for (const origin of result.allowedOrigins) {
    if (origin !== "*" && !/^https?:\/\/[^/\s]+$/.test(origin)) {
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
      return raw.split(",").map((s) => s.trim()).filter(Boolean);
    case "integer":
      if (!/^\d+$/.test(raw)) throw fail("must be a whole number");
      value = Number(raw);
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
  if (setting.min !== undefined && value < setting.min) throw fail(`must be at least ${setting.min}`);
  if (setting.max !== undefined && value > setting.max) throw fail(`must be at most ${setting.max}`);
  return value;
}
