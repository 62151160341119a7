import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Redis } from "ioredis";
import { freePort, redisServerAvailable, until } from "./test-redis.js";

const run = promisify(execFile);

/** One redis-server of a test cluster. */
export interface ClusterNode {
  readonly port: number;
  /** redis://127.0.0.1:<port>, for a direct connection to this node (no redirections followed). */
  readonly url: string;
  /** Whether the process still runs. */
  alive(): boolean;
  /** SIGKILL: no save, no goodbye; its replica takes over after the node timeout. */
  kill(): Promise<void>;
  /** Starts a killed node again with its cluster config: it rejoins, as a replica if it was failed over. */
  restart(): Promise<void>;
  /** SIGSTOP / SIGCONT: a frozen node neither answers nor replicates (a replica falls behind its master). */
  freeze(): void;
  thaw(): void;
}

/** A local Redis Cluster started by a test run: 3 masters with a replica each. */
export interface TestCluster {
  /** `redis+cluster://127.0.0.1:P1,127.0.0.1:P2,…`: every node a seed. */
  readonly url: string;
  readonly nodes: readonly ClusterNode[];
  /** Stops every node and removes their files. */
  stop(): Promise<void>;
}

/** The environment variable through which globalSetup hands the shared cluster's URL to the test workers. */
export const clusterUrlVariable = "RIVULET_TEST_CLUSTER_URL";

/** The cluster shared by this run (started by test/global-setup.ts), or undefined when redis-server is missing. */
export const sharedClusterUrl: string | undefined = process.env[clusterUrlVariable] || undefined;

/** Whether the shared cluster runs: suites skip locally without it and fail under CI (as redisAvailable). */
export function clusterAvailable(): boolean {
  if (sharedClusterUrl) return true;
  // Report the cause as redisServerAvailable does (throws under CI=true).
  if (!redisServerAvailable()) return false;
  if (process.env.CI === "true") throw new Error("the shared Redis Cluster did not start (see test/global-setup.ts)");
  console.warn("skipping: the shared Redis Cluster did not start");
  return false;
}

/**
 * Starts `masters * 2` redis-servers in cluster mode on free loopback ports
 * (no persistence, a 1 s node timeout so a failover takes about two seconds)
 * and joins them with `redis-cli --cluster create --cluster-replicas 1`.
 * Resolves once every node says cluster_state:ok and all 16384 slots are served.
 */
export async function startTestCluster(masters = 3): Promise<TestCluster> {
  const dir = mkdtempSync(join(tmpdir(), "rivulet-cluster-"));
  const ports: number[] = [];
  while (ports.length < masters * 2) {
    const port = await freePort();
    // The cluster bus listens on port + 10000: both must be free and distinct.
    if (port > 55_000 || ports.includes(port) || ports.some((other) => Math.abs(other - port) === 10_000)) continue;
    ports.push(port);
  }
  const nodes = ports.map((port): ClusterNode => {
    const launch = () =>
      spawn(
        "redis-server",
        [
          ...["--port", String(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes"],
          ...["--cluster-config-file", join(dir, `nodes-${port}.conf`), "--cluster-node-timeout", "1000", "--dir", dir],
          ...["--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"],
        ],
        { stdio: "ignore" },
      );
    let child = launch();
    let exited = once(child, "exit");
    const alive = () => child.exitCode === null && child.signalCode === null;
    return {
      port,
      url: `redis://127.0.0.1:${port}`,
      alive,
      async kill() {
        if (!alive()) return;
        child.kill("SIGCONT"); // a frozen process dies too, but say so
        child.kill("SIGKILL");
        await exited;
      },
      async restart() {
        if (alive()) return;
        child = launch();
        exited = once(child, "exit");
        await until(() => ping(port), `redis-server on port ${port} to restart`);
      },
      freeze: () => void child.kill("SIGSTOP"),
      thaw: () => void child.kill("SIGCONT"),
    };
  });
  const stop = async () => {
    await Promise.all(nodes.map((node) => node.kill()));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await Promise.all(nodes.map((node) => until(() => ping(node.port), `redis-server on port ${node.port}`)));
    await run("redis-cli", ["--cluster", "create", ...ports.map((port) => `127.0.0.1:${port}`), "--cluster-replicas", "1", "--cluster-yes"], {
      timeout: 30_000,
    });
    await until(async () => (await Promise.all(ports.map((port) => clusterOk(port, true)))).every(Boolean), "the cluster to be ok on every node", 30_000);
  } catch (error) {
    await stop();
    throw error;
  }
  return { url: `redis+cluster://${ports.map((port) => `127.0.0.1:${port}`).join(",")}`, nodes, stop };
}

/** A direct connection to one node (no cluster routing), for the tests' own checks. */
export function nodeConnection(port: number): Redis {
  // Timeouts: a frozen node (SIGSTOP) accepts connections but never answers.
  const redis = new Redis(port, "127.0.0.1", {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 2000,
    commandTimeout: 2000,
  });
  redis.on("error", () => undefined);
  return redis;
}

/** Runs `use` on a fresh direct connection to one node and closes it. */
export async function withNode<T>(port: number, use: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = nodeConnection(port);
  try {
    await redis.connect();
    return await use(redis);
  } finally {
    redis.disconnect();
  }
}

/** The ports of the masters now, from CLUSTER SHARDS asked of any live node. */
export async function masterPorts(cluster: { readonly nodes: readonly ClusterNode[] } | string): Promise<number[]> {
  const ports = typeof cluster === "string" ? seedPorts(cluster) : cluster.nodes.filter((node) => node.alive()).map((node) => node.port);
  for (const port of ports) {
    try {
      const slots = (await withNode(port, (redis) => redis.call("CLUSTER", "SLOTS"))) as [number, number, [string, number, string]][];
      return [...new Set(slots.map((range) => range[2][1]))].sort((a, b) => a - b);
    } catch {
      // that node is down: ask the next
    }
  }
  throw new Error("no node of the cluster answered");
}

/** The master serving a slot now and its replicas' ports, from CLUSTER SLOTS asked of a live node. */
export async function shardOf(slot: number, cluster: { readonly nodes: readonly ClusterNode[] }): Promise<{ master: number; replicas: number[] }> {
  for (const node of cluster.nodes.filter((candidate) => candidate.alive())) {
    try {
      const ranges = (await withNode(node.port, (redis) => redis.call("CLUSTER", "SLOTS"))) as unknown[][];
      const range = ranges.find((candidate) => slot >= Number(candidate[0]) && slot <= Number(candidate[1]));
      if (!range) continue;
      const [master, ...replicas] = (range.slice(2) as [string, number][]).map(([, port]) => port);
      return { master: master!, replicas };
    } catch {
      // that node is down or frozen: ask the next
    }
  }
  throw new Error(`no live node serves slot ${slot}`);
}

/** Resolves once every live node says cluster_state:ok with all slots served (after a failover). */
export async function clusterHealed(cluster: { readonly nodes: readonly ClusterNode[] }, timeoutMs = 30_000): Promise<void> {
  await until(
    async () => (await Promise.all(cluster.nodes.filter((node) => node.alive()).map((node) => clusterOk(node.port)))).every(Boolean),
    "the cluster to be ok again",
    timeoutMs,
  );
}

/** The ports a redis+cluster:// URL names. */
export function seedPorts(url: string): number[] {
  return url
    .replace(/^rediss?\+cluster:\/\//, "")
    .split(",")
    .map((seed) => Number(seed.split(":")[1]));
}

async function ping(port: number): Promise<boolean> {
  try {
    return (await withNode(port, (redis) => redis.ping())) === "PONG";
  } catch {
    return false;
  }
}

/** Whether a node says the cluster is ok with every slot served (and, if asked, every master has a replica). */
async function clusterOk(port: number, replicated = false): Promise<boolean> {
  try {
    const info = String(await withNode(port, (redis) => redis.call("CLUSTER", "INFO")));
    if (!/cluster_state:ok/.test(info) || !/cluster_slots_ok:16384/.test(info)) return false;
    if (!replicated) return true;
    // Each range: first slot, last slot, master, then its replicas.
    const ranges = (await withNode(port, (redis) => redis.call("CLUSTER", "SLOTS"))) as unknown[][];
    return ranges.every((range) => range.length >= 4);
  } catch {
    return false;
  }
}
