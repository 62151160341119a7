import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import type { BenchOptions } from "../lib/bench-options.js";
import { runStep } from "../lib/measure-step.js";
import type { Row } from "../lib/results.js";
import { SkipError, startTargetSession, type SessionOptions } from "../lib/target-session.js";
import { rivuletConnect } from "../targets/rivulet-connect.js";
import { socketIo } from "../targets/socket-io.js";
import type { Target, Topic } from "../targets/target.js";

const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

/**
 * Scenario (e): the Redis hop. The same subscribers and publish rate against
 * one instance with the memory broker, then against two instances sharing
 * Redis (publishing to one, subscribed to the other, a unique key prefix).
 * The added latency is the difference of the two rows. Skipped, with the
 * server's reason, where `--broker redis://` is refused. The peer the same way:
 * Socket.IO 4 alone, then two Socket.IO servers sharing rooms through
 * `@socket.io/redis-streams-adapter`. Rivulet's rows are always measured; the
 * peer's when `--targets` names `socket.io` (as the default does).
 */
export async function runRedis(options: BenchOptions, log: (line: string) => void): Promise<Row[]> {
  const topic: Topic = { kind: "room", name: "redis-hop" };
  const subscribers = Array.from({ length: options.redisSubscribers }, (_, i) => ({ userId: `sub-${i}`, topics: [topic] }));
  const caseName = `${options.redisSubscribers} subscribers, ${options.redisPublishRate} publishes/s, 64 B`;
  const prefix = () => `bench-${randomBytes(6).toString("hex")}`;
  const variants: { target: string; label: string; runs: Target; session: SessionOptions; cleanUp?: () => Promise<void> }[] = [
    { target: "rivulet-memory", label: "Rivulet Connect, one instance, memory broker", runs: rivuletConnect, session: {} },
    {
      target: "rivulet-redis",
      label: "Rivulet Connect, two instances over Redis",
      runs: rivuletConnect,
      session: { serverArgs: ["--broker", redisUrl, "--redis-prefix", prefix()], separatePublisherServer: true },
    },
  ];
  const socketIoStream = prefix();
  if (options.targets.includes(socketIo))
    variants.push(
      { target: "socket.io-memory", label: "Socket.IO 4, one instance", runs: socketIo, session: {} },
      {
        target: "socket.io-redis",
        label: "Socket.IO 4, two instances over @socket.io/redis-streams-adapter",
        runs: socketIo,
        session: { serverArgs: ["--redis", redisUrl, "--redis-prefix", socketIoStream], separatePublisherServer: true },
        // The adapter's stream (up to 10,000 entries) would outlive the run; its servers exit at once on SIGTERM.
        async cleanUp() {
          const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
          try {
            await redis.connect();
            await redis.del(socketIoStream);
          } finally {
            redis.disconnect();
          }
        },
      },
    );
  const rows: Row[] = [];
  for (const variant of variants) {
    const head = {
      scenario: "redis",
      case: caseName,
      target: variant.target,
      label: variant.label,
      role: variant.runs.role,
      family: variant.runs.family,
    } as const;
    log(`redis · ${caseName} · ${variant.label}`);
    let session;
    try {
      session = await startTargetSession(variant.runs, variant.session);
      await session.open(subscribers);
      await session.warmUp([topic], 64);
      const fixed = await runStep(session, {
        topics: [topic],
        fanOut: [subscribers.length],
        publishRate: options.redisPublishRate,
        payloadBytes: 64,
        timing: { ...options.timing, durationMs: 4 * options.timing.durationMs },
      });
      rows.push({ ...head, fixed });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      rows.push({ ...head, skipped: error instanceof SkipError ? message : `failed: ${message}` });
    } finally {
      await session?.stop();
      await variant.cleanUp?.().catch(() => undefined);
    }
  }
  return rows;
}
