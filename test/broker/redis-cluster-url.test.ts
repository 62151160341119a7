import { describe, expect, it } from "vitest";
import { isClusterUrl, parseClusterUrl } from "../../src/broker/redis/cluster.js";
import { loadConfig } from "../../src/config.js";

describe("Redis Cluster URLs", () => {
  it("name the cluster by their scheme, not by asking the server", () => {
    expect(isClusterUrl("redis+cluster://a:1")).toBe(true);
    expect(isClusterUrl("rediss+cluster://a:1")).toBe(true);
    expect(isClusterUrl("redis://a:1")).toBe(false);
    expect(loadConfig(["--broker", "redis+cluster://10.0.0.1:7000,10.0.0.2:7000"], {}).broker).toBe("redis+cluster://10.0.0.1:7000,10.0.0.2:7000");
    expect(loadConfig(["--redis-wait", "1"], {}).redisWait).toBe(1);
    expect(loadConfig([], {}).redisWait).toBe(0);
  });

  it("list seed nodes, with optional credentials, TLS and IPv6 in brackets", () => {
    expect(parseClusterUrl("redis+cluster://10.0.0.1:7000,10.0.0.2:7001")).toEqual({
      nodes: [
        { host: "10.0.0.1", port: 7000 },
        { host: "10.0.0.2", port: 7001 },
      ],
      username: undefined,
      password: undefined,
      tls: false,
    });
    expect(parseClusterUrl("rediss+cluster://app:p%40ss@redis-1:6380,[::1]:6381/")).toEqual({
      nodes: [
        { host: "redis-1", port: 6380 },
        { host: "::1", port: 6381 },
      ],
      username: "app",
      password: "p@ss",
      tls: true,
    });
    expect(parseClusterUrl("redis+cluster://:secret@redis-1").nodes).toEqual([{ host: "redis-1", port: 6379 }]);
    expect(parseClusterUrl("redis+cluster://:secret@redis-1").password).toBe("secret");
  });

  it("refuses what is not a list of host:port", () => {
    expect(() => parseClusterUrl("redis+cluster://")).toThrow("redis+cluster://[user:password@]host:port[,host:port…]");
    expect(() => parseClusterUrl("redis+cluster://a:1,b:99999")).toThrow('not a host:port in the Redis Cluster URL: "b:99999"');
    expect(() => parseClusterUrl("redis+cluster://a:1/2")).toThrow("redis+cluster://");
  });
});
