import { Cluster, Redis, type ClusterOptions, type RedisOptions } from "ioredis";

/** One seed node of a cluster URL. */
export interface SeedNode {
  readonly host: string;
  readonly port: number;
}

/** Whether a broker URL names a Redis Cluster (`redis+cluster://` or `rediss+cluster://`). */
export function isClusterUrl(url: string): boolean {
  return /^rediss?\+cluster:\/\//.test(url);
}

/** The seed nodes, credentials and TLS of a `redis[s]+cluster://[user:password@]host:port[,host:port…]` URL. */
export interface ClusterSeeds {
  readonly nodes: SeedNode[];
  readonly username?: string;
  readonly password?: string;
  readonly tls: boolean;
}

/**
 * Parses a cluster URL. The scheme is explicit rather than detected (asking a
 * redis:// server CLUSTER INFO at start): an operator who names a cluster gets
 * an error if it is not one, and a single Redis is never taken for a cluster
 * of one because of a misconfiguration.
 */
export function parseClusterUrl(url: string): ClusterSeeds {
  const match = /^(rediss?)\+cluster:\/\/(?:([^@/]*)@)?([^/?#]+)\/?$/.exec(url);
  if (!match) throw new Error("a Redis Cluster URL is redis+cluster://[user:password@]host:port[,host:port…]");
  const [, scheme, auth, hosts] = match;
  const nodes = hosts!.split(",").map((seed): SeedNode => {
    const at = seed.lastIndexOf(":");
    const host = at > 0 ? seed.slice(0, at) : seed;
    const port = at > 0 ? Number(seed.slice(at + 1)) : 6379;
    if (!host || !Number.isInteger(port) || port <= 0 || port > 65535) throw new Error(`not a host:port in the Redis Cluster URL: "${seed}"`);
    return { host: host.replace(/^\[(.*)\]$/, "$1"), port };
  });
  let username: string | undefined;
  let password: string | undefined;
  if (auth) {
    const colon = auth.indexOf(":");
    username = colon >= 0 ? decodeURIComponent(auth.slice(0, colon)) || undefined : undefined;
    password = decodeURIComponent(colon >= 0 ? auth.slice(colon + 1) : auth);
  }
  return { nodes, username, password, tls: scheme === "rediss" };
}

/** What the broker passes to every connection of the cluster (naming, RESP2, fail-fast). */
export interface ClusterConnectionOptions {
  readonly connectionName: string;
  /** The delay before the attempt-th reconnection of the cluster (ms). */
  readonly retryDelay: (attempt: number) => number;
}

/**
 * The command client: ioredis's Cluster, which keeps one connection per node
 * it talks to (the masters, with scaleReads "master") and routes each command
 * to the node serving its key's slot, following MOVED (refreshing its slots
 * table) and ASK redirections and retrying TRYAGAIN and CLUSTERDOWN by itself.
 * Like the single-node broker it fails fast: no offline queue, no retry of a
 * command whose node is gone (the caller gets `unavailable` and retries).
 */
export function createClusterClient(seeds: ClusterSeeds, options: ClusterConnectionOptions): Cluster {
  const redisOptions: ClusterOptions["redisOptions"] = {
    connectionName: options.connectionName,
    protocol: 2,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    // A node that stops answering is dropped like a closed one.
    commandTimeout: 5000,
    socketTimeout: 5000,
    ...(seeds.username !== undefined ? { username: seeds.username } : {}),
    ...(seeds.password !== undefined ? { password: seeds.password } : {}),
    ...(seeds.tls ? { tls: {} } : {}),
  };
  return new Cluster([...seeds.nodes], {
    enableOfflineQueue: false,
    scaleReads: "master",
    redisOptions,
    clusterRetryStrategy: (attempt) => options.retryDelay(attempt),
    // Redirections during a slot migration and the pause of a failover are short.
    retryDelayOnMoved: 0,
    retryDelayOnTryAgain: 50,
    retryDelayOnClusterDown: 100,
    retryDelayOnFailover: 100,
    maxRedirections: 16,
    slotsRefreshTimeout: 2000,
    slotsRefreshInterval: 5000,
  });
}

/**
 * The Pub/Sub connection of a cluster instance: one plain connection to one
 * master (classic SUBSCRIBE: a PUBLISH on any node reaches subscribers on
 * every node over the cluster bus). When it drops, it reconnects to the
 * masters in turn, as the cluster knows them, so a failed node is not waited
 * for; ioredis then subscribes again to every channel. Its options are those
 * of the single-node broker's subscriber: a queue that waits out an outage.
 */
export function createClusterSubscriber(cluster: Cluster, seeds: ClusterSeeds, options: ClusterConnectionOptions): Redis {
  const first = seeds.nodes[0]!;
  const connection: RedisOptions = {
    host: first.host,
    port: first.port,
    connectionName: options.connectionName,
    protocol: 2,
    lazyConnect: true,
    enableOfflineQueue: true,
    maxRetriesPerRequest: null,
    ...(seeds.username !== undefined ? { username: seeds.username } : {}),
    ...(seeds.password !== undefined ? { password: seeds.password } : {}),
    ...(seeds.tls ? { tls: {} } : {}),
    retryStrategy: (attempt) => {
      // ioredis's connector reads host and port from these options at each attempt.
      const masters = cluster.nodes("master");
      const next = masters.length > 0 ? masters[attempt % masters.length]!.options : seeds.nodes[attempt % seeds.nodes.length]!;
      subscriber.options.host = next.host;
      subscriber.options.port = next.port;
      return options.retryDelay(attempt);
    },
  };
  const subscriber = new Redis(connection);
  return subscriber;
}
