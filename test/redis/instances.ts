import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { createHmacTokens } from "../../src/auth/tokens.js";
import { testSecret } from "../helpers/server.js";
import { clusterAvailable, sharedClusterUrl } from "../broker/test-cluster.js";
import { deleteKeys, redisAvailable, redisUrl, uniquePrefix } from "../broker/test-redis.js";

const root = new URL("../..", import.meta.url).pathname;

/** A shared broker the multi-instance suites run on. */
export interface SharedBroker {
  /** "Redis" or "Redis Cluster", for the suite's title. */
  readonly name: string;
  /** The --broker URL. */
  readonly url: string;
  /** Whether it runs (else the suite skips locally; under CI=true the check throws). */
  readonly available: boolean;
}

/**
 * The development Redis (REDIS_URL) and the run's shared Redis Cluster
 * (test/global-setup.ts): a suite that holds for any Redis deployment runs
 * once on each, `for (const broker of sharedBrokers()) describe.runIf(broker.available)(…)`.
 */
export function sharedBrokers(): SharedBroker[] {
  return [
    { name: "Redis", url: redisUrl, available: redisAvailable() },
    { name: "Redis Cluster", url: sharedClusterUrl ?? "", available: clusterAvailable() },
  ];
}

/** One Rivulet process, started as `npm start` does, sharing Redis with its siblings. */
export interface Instance {
  readonly name: string;
  /** Its Redis connections are named `rivulet:<instanceId>`. */
  readonly instanceId: string;
  readonly port: number;
  /** http://127.0.0.1:<port> */
  readonly url: string;
  readonly process: ChildProcess;
  /** Every JSON log line so far. */
  readonly logs: Record<string, unknown>[];
  /** Whether the process still runs. */
  alive(): boolean;
  /** Kills it with SIGKILL: no shutdown, no goodbye to clients or Redis. */
  kill(): Promise<void>;
  /** Stops it with SIGTERM, as an orchestrator does: a graceful shutdown; resolves when it exited. */
  terminate(): Promise<void>;
}

export interface InstancesOptions {
  /** Redis to share; default REDIS_URL. */
  readonly redisUrl?: string;
  /** More command-line flags for every instance. */
  readonly args?: readonly string[];
}

/** Several instances over one Redis key prefix of their own, and tokens they all accept. */
export interface Instances {
  readonly list: readonly Instance[];
  readonly prefix: string;
  /** A bearer token every instance accepts. */
  token(userId: string, roles?: readonly string[]): Promise<string>;
  /** Kills whatever still runs and deletes the prefix's keys. */
  close(): Promise<void>;
}

/**
 * Starts `count` real processes (`tsx src/main.ts --port 0 --broker <redis>`)
 * with one unique `--redis-prefix`, so a test shares the development Redis
 * with other suites without seeing their keys. Resolves once every instance
 * logged the port it listens on.
 */
export async function startInstances(count: number, options: InstancesOptions = {}): Promise<Instances> {
  const url = options.redisUrl ?? redisUrl;
  const prefix = uniquePrefix();
  const started = await Promise.allSettled(
    Array.from({ length: count }, (_, i) => startInstance(String.fromCharCode(65 + i), url, prefix, options.args ?? [])),
  );
  const list = started.flatMap((result) => (result.status === "fulfilled" ? [result.value] : []));
  const failed = started.find((result) => result.status === "rejected");
  if (failed) {
    await Promise.all(list.map((instance) => instance.kill()));
    throw failed.reason;
  }
  const tokens = createHmacTokens(testSecret);
  return {
    list,
    prefix,
    token: (userId, roles = []) => tokens.mint({ userId, roles, ttlSeconds: 3600 }),
    async close() {
      await Promise.all(list.map((instance) => instance.kill()));
      await deleteKeys(prefix, url).catch(() => 0); // a private Redis may be gone already
    },
  };
}

async function startInstance(name: string, url: string, prefix: string, args: readonly string[]): Promise<Instance> {
  const instanceId = `${prefix.split(":")[1]}-${name}`;
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      "src/main.ts",
      ...["--port", "0", "--host", "127.0.0.1", "--broker", url, "--redis-prefix", prefix, "--instance-id", instanceId],
      ...["--auth-secret", testSecret, "--rooms-default", "allow", "--log-level", "info", "--token-interval", "5ms", "--shutdown-grace", "1s"],
      // Suites publish fast from one user, as test/helpers/server.ts allows too; later flags win.
      ...["--publish-rate", "1000000", "--publish-burst", "1000000"],
      ...args,
    ],
    { cwd: root, stdio: ["ignore", "pipe", "pipe"] },
  );
  const exited = once(child, "exit");
  const logs: Record<string, unknown>[] = [];
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  const port = await new Promise<number>((resolve, reject) => {
    // Read every line for the whole life of the process, so its pipe never fills.
    createInterface({ input: child.stdout! }).on("line", (line) => {
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return; // not a log line
      }
      logs.push(entry);
      if (typeof entry.port === "number" && String(entry.msg).startsWith("listening on")) resolve(entry.port);
    });
    void exited.then(([code, signal]) => reject(new Error(`instance ${name} exited (${String(code ?? signal)}) before listening: ${stderr}`)));
  });
  return {
    name,
    instanceId,
    port,
    url: `http://127.0.0.1:${port}`,
    process: child,
    logs,
    alive: () => child.exitCode === null && child.signalCode === null,
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGKILL");
      await exited;
    },
    async terminate() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      await exited;
    },
  };
}
