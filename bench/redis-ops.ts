import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { startTargetSession } from "./lib/target-session.js";
import { rivuletWebSocket } from "./targets/rivulet-websocket.js";
import type { Topic } from "./targets/target.js";

/**
 * Counts the Redis commands Rivulet spends per subscriber, per publish and
 * per idle second (docs/scaling.md, "Capacity planning"), from Redis's own
 * `INFO commandstats` before and after each phase: two instances (publishing
 * through one, subscribed over WebSocket to the other), a unique key prefix.
 * Counts, not times, so they hold on any machine; run it alone on the Redis
 * (other clients' commands would be counted too).
 *
 *   npm run build && npx tsx bench/redis-ops.ts [--broker redis://127.0.0.1:6379] [--subscribers 1000] [--topics 100] [--rounds 10] [--idle-seconds 30]
 *
 * `--broker redis+cluster://host:port` sums the masters of a Redis Cluster.
 */
const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]?.replace(/^--/, "") ?? "", process.argv[i + 1] ?? "");
const broker = args.get("broker") ?? process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const subscriberCount = Number(args.get("subscribers") ?? 1000);
const topicCount = Number(args.get("topics") ?? 100);
const rounds = Number(args.get("rounds") ?? 10);
const idleSeconds = Number(args.get("idle-seconds") ?? 30);

/** The nodes whose commands are counted: the one Redis, or every master of a cluster. */
async function countedNodes(): Promise<Redis[]> {
  const cluster = /^rediss?\+cluster:\/\/(.*)$/.exec(broker);
  if (!cluster) return [new Redis(broker)];
  const [seed = ""] = (cluster[1] ?? "").split(",");
  const [host = "127.0.0.1", port = "6379"] = seed.split(":");
  const first = new Redis({ host, port: Number(port) });
  const nodes = String(await first.cluster("NODES"));
  first.disconnect();
  return nodes
    .split("\n")
    .filter((line) => line.includes("master") && !line.includes("fail"))
    .map((line) => {
      const [address = ""] = (line.split(" ")[1] ?? "").split("@");
      const [nodeHost = "", nodePort = ""] = address.split(":");
      return new Redis({ host: nodeHost, port: Number(nodePort) });
    });
}

/** Calls per command summed over the nodes (`cmdstat_evalsha:calls=12,usec=345,...`), and Redis's CPU time in them as `usec`. */
async function commandCalls(nodes: readonly Redis[]): Promise<Map<string, number>> {
  const calls = new Map<string, number>();
  for (const node of nodes) {
    const info = await node.info("commandstats");
    for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) {
      const [, name = "", count = "0", usec = "0"] = match;
      calls.set(name, (calls.get(name) ?? 0) + Number(count));
      // A script's usec includes the commands it runs, which count their own too: only top-level commands are summed.
      if (!scriptCommands.has(name)) calls.set(usecKey, (calls.get(usecKey) ?? 0) + Number(usec));
    }
  }
  return calls;
}

/** Where commandCalls keeps the CPU time; not a command. */
const usecKey = " usec";
/** The commands the scripts run inside Redis: counted as commands, but their time is already in their script's. */
const scriptCommands = new Set(["hmget", "hget", "hset", "hincrby", "xadd", "xrange", "xrevrange", "pexpire", "del", "time", "xtrim"]);

/** The commands run between two snapshots, minus the counting's own INFO. */
function delta(before: Map<string, number>, after: Map<string, number>, infoCalls: number): Map<string, number> {
  const result = new Map<string, number>();
  for (const [name, count] of after) {
    const added = count - (before.get(name) ?? 0) - (name === "info" ? infoCalls : 0);
    if (added > 0) result.set(name, added);
  }
  return result;
}

function describe(phase: string, counts: Map<string, number>, per: number, unit: string): string {
  const usec = counts.get(usecKey) ?? 0;
  counts.delete(usecKey);
  const total = [...counts.values()].reduce((sum, count) => sum + count, 0);
  const detail = [...counts.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([name, count]) => `${name} ${(count / per).toFixed(3)}`)
    .join(", ");
  return `| ${phase} | ${(total / per).toFixed(3)} per ${unit} | ${(usec / per).toFixed(1)} µs per ${unit} | ${detail} |`;
}

const nodes = await countedNodes();
const prefix = `bench-ops-${randomBytes(6).toString("hex")}`;
const session = await startTargetSession(rivuletWebSocket, {
  serverArgs: ["--broker", broker, "--redis-prefix", prefix],
  separatePublisherServer: true,
});
let published = 0;
const publish = session.publisher.publish.bind(session.publisher);
session.publisher.publish = (topic, payload) => {
  published++;
  return publish(topic, payload);
};
const lines: string[] = [];
try {
  const topics: Topic[] = Array.from({ length: topicCount }, (_, i) => ({ kind: "room", name: `ops-${i}` }));
  const plans = Array.from({ length: subscriberCount }, (_, i) => ({ userId: `ops-${i}`, topics: [topics[i % topicCount] as Topic] }));
  // Every counted phase starts from a quiet Redis: the instances' start-up and a warm-up round are not counted.
  await sleep(1000);
  let before = await commandCalls(nodes);
  const opened = await session.open(plans);
  await sleep(1000); // the last subscriptions' touch and presence commands settle
  let after = await commandCalls(nodes);
  lines.push(describe("subscribe", delta(before, after, nodes.length), opened, "subscriber"));

  await session.warmUp(topics, 64); // the first message per topic: the live reader's first round per topic
  before = await commandCalls(nodes);
  published = 0;
  for (let round = 0; round < rounds; round++) await session.warmUp(topics, 64);
  after = await commandCalls(nodes);
  lines.push(describe("publish (and its delivery)", delta(before, after, nodes.length), published, "publish"));

  before = await commandCalls(nodes);
  await sleep(idleSeconds * 1000);
  after = await commandCalls(nodes);
  lines.push(describe(`idle (${opened} subscribers, ${topicCount} topics)`, delta(before, after, nodes.length), idleSeconds, "second"));
} finally {
  await session.stop();
  for (const node of nodes) {
    let cursor = "0";
    do {
      const [next, keys] = await node.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
      cursor = next;
      for (const key of keys) await node.del(key);
    } while (cursor !== "0");
    node.disconnect();
  }
}
process.stdout.write(
  `Redis commands, ${broker}, ${subscriberCount} subscribers on ${topicCount} topics, 2 instances\n\n| phase | commands | Redis CPU | by command |\n| --- | --- | --- | --- |\n${lines.join("\n")}\n`,
);
