import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:net";
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { hasSystemDependency } from "../helpers/system.js";

/** The shared Redis of the development and CI machines. */
export const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

/** Whether Redis answers at REDIS_URL: suites skip locally without it and fail under CI. */
export function redisAvailable(url = redisUrl): boolean {
  return hasSystemDependency(
    `Redis at ${url}`,
    () => execFileSync("redis-cli", ["-u", url, "ping"], { encoding: "utf8", timeout: 5000 }).trim() === "PONG",
    "apt-get install redis-server, or set REDIS_URL",
  );
}

/** Whether `redis-server` can be started by a test (suites that stop and restart their own Redis). */
export function redisServerAvailable(): boolean {
  return hasSystemDependency(
    "redis-server",
    () => {
      execFileSync("redis-server", ["--version"], { stdio: "ignore", timeout: 5000 });
      return true;
    },
    "apt-get install redis-server",
  );
}

/** A key prefix no other test uses, so tests share one Redis without seeing each other's keys. */
export function uniquePrefix(): string {
  return `rivulet-test:${randomBytes(6).toString("hex")}:`;
}

/**
 * The plain redis:// URLs behind a broker URL: itself for a single Redis; for
 * a redis+cluster:// URL, the nodes CLUSTER SLOTS names now (asked of the
 * first seed that answers), the masters only or every node.
 */
export async function nodeUrls(url: string, which: "masters" | "all"): Promise<string[]> {
  const cluster = /^rediss?\+cluster:\/\/(.*)$/.exec(url);
  if (!cluster) return [url];
  for (const seed of cluster[1]!.split(",")) {
    const redis = new Redis(`redis://${seed}`, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    redis.on("error", () => undefined);
    try {
      await redis.connect();
      // Each range: [first slot, last slot, master, ...replicas], a node being [host, port, id].
      const ranges = (await redis.call("CLUSTER", "SLOTS")) as unknown[][];
      const nodes = ranges.flatMap((range) => range.slice(2, which === "masters" ? 3 : undefined) as [string, number][]);
      return [...new Set(nodes.map(([host, port]) => `redis://${host}:${port}`))].sort();
    } catch {
      // this seed is down: ask the next
    } finally {
      redis.disconnect();
    }
  }
  throw new Error("no node of the Redis Cluster answered");
}

/** Deletes every key under a prefix (never FLUSHALL: other suites use the same Redis); on a cluster, on every master. */
export async function deleteKeys(prefix: string, url = redisUrl): Promise<number> {
  let deleted = 0;
  for (const node of await nodeUrls(url, "masters")) deleted += await deleteNodeKeys(prefix, node);
  return deleted;
}

async function deleteNodeKeys(prefix: string, url: string): Promise<number> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    let deleted = 0;
    let cursor = "0";
    do {
      const [next, found] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
      cursor = next;
      // One DEL per key (pipelined): on a cluster node, one DEL may not span slots.
      const replies = found.length > 0 ? ((await redis.pipeline(found.map((key) => ["del", key])).exec()) ?? []) : [];
      for (const [, removed] of replies) deleted += Number(removed ?? 0);
    } while (cursor !== "0");
    return deleted;
  } finally {
    redis.disconnect();
  }
}

/** How many connections named `name` Redis serves now (CLIENT LIST); on a cluster, summed over every node. */
export async function countConnections(name: string, url = redisUrl): Promise<number> {
  let count = 0;
  for (const node of await nodeUrls(url, "all")) count += await countNodeConnections(name, node);
  return count;
}

async function countNodeConnections(name: string, url: string): Promise<number> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    const list = String(await redis.client("LIST"));
    return list.split("\n").filter((line) => line.includes(` name=${name} `)).length;
  } finally {
    redis.disconnect();
  }
}

/** Kills every connection named `name` (CLIENT KILL ID, one by one), as a network blip would; returns how many. On a cluster, on every node. */
export async function killConnections(name: string, url = redisUrl): Promise<number> {
  let killed = 0;
  for (const node of await nodeUrls(url, "all")) killed += await killNodeConnections(name, node);
  return killed;
}

async function killNodeConnections(name: string, url: string): Promise<number> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    const list = String(await redis.client("LIST"));
    const ids = list
      .split("\n")
      .filter((line) => line.includes(` name=${name} `))
      .map((line) => /^id=(\d+) /.exec(line)?.[1])
      .filter((id): id is string => id !== undefined);
    for (const id of ids) await redis.client("KILL", "ID", id);
    return ids.length;
  } finally {
    redis.disconnect();
  }
}

/** Polls a condition until it holds or the deadline passes (for states with no event to wait on). */
export async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A redis-server of a test's own, so it may be stopped, wiped and restarted without disturbing the shared one. */
export interface PrivateRedis {
  readonly url: string;
  readonly port: number;
  /** Stops the server (SIGKILL: no save, no goodbye to clients). Its data is lost: it runs with no persistence. */
  stop(): Promise<void>;
  /** Starts it again on the same port, empty. */
  start(): Promise<void>;
}

/** Starts `redis-server` on a free loopback port with persistence off; stop it with `stop()`. */
export async function startPrivateRedis(): Promise<PrivateRedis> {
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  const start = async () => {
    const server = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--loglevel", "warning"], {
      stdio: "ignore",
    });
    child = server;
    const exited = once(server, "exit").then(() => {
      throw new Error(`redis-server on port ${port} exited while starting`);
    });
    exited.catch(() => undefined);
    await Promise.race([until(() => ping(url), `redis-server on port ${port}`), exited]);
  };
  const stop = async () => {
    const server = child;
    child = undefined;
    if (!server || server.exitCode !== null) return;
    const exited = once(server, "exit");
    server.kill("SIGKILL");
    await exited;
  };
  await start();
  return { url, port, start, stop };
}

async function ping(url: string): Promise<boolean> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on("error", () => undefined);
  try {
    await redis.connect();
    return (await redis.ping()) === "PONG";
  } catch {
    return false;
  } finally {
    redis.disconnect();
  }
}

/** A TCP port free on loopback now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}
