import { describe, expect, it } from "vitest";
import { availableParallelism } from "node:os";
import { ConfigError, connectionsFromOpenFileLimit, loadConfig, readProcessLimits, usage } from "../src/config.js";

describe("configuration", () => {
  it("has defaults that run a development server on :8080 with the memory broker", () => {
    const config = loadConfig([], {});
    expect(config).toMatchObject({
      port: 8080,
      broker: "memory",
      authSecret: undefined,
      keepaliveMs: 15_000,
      historyCount: 1000,
      maxMessageBytes: 1024 * 1024,
    });
  });

  it("reads environment variables, and flags override them", () => {
    const env = { PORT: "9000", RIVULET_BROKER: "redis://127.0.0.1:6379", RIVULET_HISTORY_AGE: "2h" };
    expect(loadConfig([], env)).toMatchObject({ port: 9000, broker: "redis://127.0.0.1:6379", historyAgeMs: 7_200_000 });
    expect(loadConfig(["--port", "0", "--history-age=90s"], env)).toMatchObject({ port: 0, historyAgeMs: 90_000 });
  });

  it("reads the Redis prefix and instance id", () => {
    expect(loadConfig([], {})).toMatchObject({ redisPrefix: "rivulet:", instanceId: undefined });
    expect(loadConfig(["--redis-prefix", "app1:", "--instance-id", "web-1"], {})).toMatchObject({ redisPrefix: "app1:", instanceId: "web-1" });
    expect(loadConfig([], { RIVULET_REDIS_PREFIX: "app2:", RIVULET_INSTANCE_ID: "web-2" })).toMatchObject({ redisPrefix: "app2:", instanceId: "web-2" });
  });

  it("reads --sse-compression on or off (default off), and refuses anything else", () => {
    expect(loadConfig([], {}).sseCompression).toBe(false);
    expect(loadConfig([], { RIVULET_SSE_COMPRESSION: "on" }).sseCompression).toBe(true);
    expect(loadConfig(["--sse-compression", "off"], { RIVULET_SSE_COMPRESSION: "on" }).sseCompression).toBe(false);
    expect(() => loadConfig(["--sse-compression", "true"], {})).toThrow(ConfigError);
    expect(() => loadConfig(["--sse-compression", "true"], {})).toThrow('--sse-compression (RIVULET_SSE_COMPRESSION): must be "on" or "off", got "true"');
  });

  it("parses sizes, durations and lists", () => {
    expect(
      loadConfig(["--max-message-bytes", "64KiB", "--keepalive", "500ms", "--allowed-origins", "https://a.example, http://b.example:8080"], {}),
    ).toMatchObject({
      maxMessageBytes: 65536,
      keepaliveMs: 500,
      allowedOrigins: ["https://a.example", "http://b.example:8080"],
    });
  });

  it.each([
    [["--port", "70000"], "--port (PORT): must be at most 65535"],
    [["--port", "abc"], "--port (PORT): must be a whole number"],
    [["--history-age", "soon"], "must be a duration"],
    // Bounds speak the flag's unit, not the milliseconds or bytes they are kept in.
    [["--history-age", "5"], '--history-age (RIVULET_HISTORY_AGE): must be at least 1s, got "5"'],
    [["--headers-timeout", "6m"], "--headers-timeout (RIVULET_HEADERS_TIMEOUT): must be at most 5m, got"],
    [["--keepalive", "50ms"], "--keepalive (RIVULET_KEEPALIVE): must be at least 100ms, got"],
    [["--ws-max-buffered", "1KiB"], "--ws-max-buffered (RIVULET_WS_MAX_BUFFERED): must be at least 64KiB, got"],
    [["--max-message-bytes", "65MiB"], "--max-message-bytes (RIVULET_MAX_MESSAGE_BYTES): must be at most 64MiB, got"],
    [["--max-message-bytes", "1GB"], "must be a size"],
    [["--broker", "kafka://x"], '--broker must be "memory" or a redis:// URL'],
    [["--allowed-origins", "*"], '--allowed-origins: "*" would let every web site use your users\' cookies'],
    [["--tls-cert", "cert.pem"], "--tls-cert and --tls-key go together"],
    [["--allowed-origins", "example.com"], "is not an origin"],
    [["--log-level", "loud"], "--log-level must be"],
    [["--redis-prefix", "app{1}:"], "--redis-prefix must not contain braces"],
    [["--instance-id", "has space"], "--instance-id must be 1 to 64 letters"],
    [["--no-such-flag"], "Unknown option"],
    [["--ws-compression", "yes"], '--ws-compression (RIVULET_WS_COMPRESSION): must be "on" or "off", got "yes"'],
    [["--ws-compression-threshold", "1k"], "--ws-compression-threshold (RIVULET_WS_COMPRESSION_THRESHOLD): must be a size"],
  ])("refuses %j with a clear error", (argv, message) => {
    expect(() => loadConfig(argv, {})).toThrow(ConfigError);
    expect(() => loadConfig(argv, {})).toThrow(message);
  });

  it("leaves WebSocket compression off by default, with a 1 KiB threshold when it is turned on", () => {
    expect(loadConfig([], {})).toMatchObject({ wsCompression: false, wsCompressionThresholdBytes: 1024 });
    expect(loadConfig(["--ws-compression", "on", "--ws-compression-threshold", "256"], {})).toMatchObject({
      wsCompression: true,
      wsCompressionThresholdBytes: 256,
    });
    expect(loadConfig([], { RIVULET_WS_COMPRESSION: "on" })).toMatchObject({ wsCompression: true });
  });

  it("bounds --max-timeout at 576h: a longer deadline would overflow Node's timers and end calls at once", () => {
    expect(loadConfig(["--max-timeout", "576h"], {})).toMatchObject({ maxTimeoutMs: 576 * 3_600_000 });
    expect(() => loadConfig(["--max-timeout", "1000h"], {})).toThrow(ConfigError);
    expect(() => loadConfig(["--max-timeout", "1000h"], {})).toThrow("--max-timeout (RIVULET_MAX_TIMEOUT): must be at most");
    expect(() => loadConfig([], { RIVULET_MAX_TIMEOUT: "577h" })).toThrow("--max-timeout (RIVULET_MAX_TIMEOUT): must be at most");
  });

  it.each(["--idle-timeout", "--keepalive", "--token-interval", "--completion-stall", "--shutdown-grace"])(
    "bounds %s at 576h, as --max-timeout: a longer timer would fire at once",
    (flag) => {
      expect(() => loadConfig([flag, "576h"], {})).not.toThrow();
      expect(() => loadConfig([flag, "577h"], {})).toThrow(ConfigError);
      expect(() => loadConfig([flag, "577h"], {})).toThrow(`${flag} (`);
      expect(() => loadConfig([flag, "577h"], {})).toThrow("must be at most 576h");
    },
  );

  it("reads --workers as a count of processes, auto as the cores, and refuses more than 1 on the memory broker", () => {
    const redis = ["--broker", "redis://127.0.0.1:6379"];
    expect(loadConfig([], {})).toMatchObject({ workers: 1 });
    expect(loadConfig(["--workers", "4", ...redis], {})).toMatchObject({ workers: 4 });
    expect(loadConfig(redis, { RIVULET_WORKERS: "auto" })).toMatchObject({ workers: availableParallelism() });
    expect(() => loadConfig(["--workers", "0"], {})).toThrow('--workers (RIVULET_WORKERS): must be at least 1, got "0"');
    expect(() => loadConfig(["--workers", "all"], {})).toThrow('--workers (RIVULET_WORKERS): must be a whole number or "auto", got "all"');
    // Other integers take no "auto".
    expect(() => loadConfig(["--history-count", "auto"], {})).toThrow('--history-count (RIVULET_HISTORY_COUNT): must be a whole number, got "auto"');
    expect(() => loadConfig(["--workers", "2"], {})).toThrow(
      "--workers 2 needs a shared broker: pass --broker redis://… (the memory broker lives in one process)",
    );
    expect(usage()).toContain("RIVULET_WORKERS");
  });

  it("reads --max-connections as a count per serving process, auto from the open-file limit, 0 as no cap", () => {
    expect(loadConfig(["--max-connections", "5"], {})).toMatchObject({ maxConnections: 5 });
    expect(loadConfig([], { RIVULET_MAX_CONNECTIONS: "0" })).toMatchObject({ maxConnections: 0 });
    expect(loadConfig([], {})).toMatchObject({ maxConnections: connectionsFromOpenFileLimit(readProcessLimits()) });
    expect(loadConfig(["--max-connections", "auto"], {})).toMatchObject({ maxConnections: connectionsFromOpenFileLimit(readProcessLimits()) });
    expect(() => loadConfig(["--max-connections=-1"], {})).toThrow('--max-connections (RIVULET_MAX_CONNECTIONS): must be a whole number or "auto", got "-1"');
    expect(usage()).toMatch(/--max-connections +RIVULET_MAX_CONNECTIONS .*auto: the open-file limit minus 256; 0: no cap \(default auto\)/);
  });

  it("derives --max-connections auto from the soft open-file limit, less 256 (at most half) for Redis, files and logs", () => {
    const limits = (soft: string, hard: string) =>
      `Limit                     Soft Limit           Hard Limit           Units     \nMax open files            ${soft.padEnd(20)} ${hard.padEnd(20)} files     \n`;
    expect(connectionsFromOpenFileLimit(limits("20000", "20000"))).toBe(19_744);
    expect(connectionsFromOpenFileLimit(limits("1024", "524288"))).toBe(768);
    expect(connectionsFromOpenFileLimit(limits("256", "256"))).toBe(128);
    // Unlimited, or no /proc (not Linux): no cap, as Node's own default.
    expect(connectionsFromOpenFileLimit(limits("unlimited", "unlimited"))).toBe(0);
    expect(connectionsFromOpenFileLimit(undefined)).toBe(0);
  });

  it("documents every flag in --help", () => {
    expect(usage()).toContain("--auth-secret");
    expect(usage()).toContain("RIVULET_BROKER");
  });
});
