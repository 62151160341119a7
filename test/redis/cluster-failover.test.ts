import calculateSlot from "cluster-key-slot";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatService, type ChatMessage } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { GapReason } from "../../gen/rivulet/stream/v1/gap_pb.js";
import { decodeCursor } from "../../src/broker/cursor.js";
import { createRedisKeys } from "../../src/broker/redis/keys.js";
import { roomTopic } from "../../src/services/chat.js";
import { clusterHealed, shardOf, startTestCluster, withNode, type ClusterNode, type TestCluster } from "../broker/test-cluster.js";
import { redisServerAvailable, until } from "../broker/test-redis.js";
import { bearer, clientFor, transportFor } from "../helpers/clients.js";
import { startInstances, type Instance } from "./instances.js";
import { startRoomSubscriber, subscriberKinds, type RoomSubscriber } from "./room-subscriber.js";

/** What one failover did, for the assertions and the closing report. */
interface FailoverReport {
  /** Messages acknowledged to the publisher in the failed shard's room, and in a room of another shard. */
  readonly acknowledged: { victim: ChatMessage[]; calm: ChatMessage[] };
  /** Acknowledged in the failed shard's room while its replica was frozen (not replicated), before the kill. */
  readonly unreplicated: ChatMessage[];
  /** Acknowledged messages missing from the room's log after the failover. */
  readonly lost: ChatMessage[];
  readonly victimSubscribers: { name: string; subscriber: RoomSubscriber }[];
  readonly calmSubscribers: { name: string; subscriber: RoomSubscriber }[];
  /** The room's log read after the failover, oldest first. */
  readonly log: { id: string; text: string; offset: number }[];
  /** The message every subscriber of the failed shard's room started after (its cursor). */
  readonly start: ChatMessage;
  readonly failedSends: number;
}

/**
 * A master of a Redis Cluster killed while two instances publish and real
 * clients of every transport subscribe. To make Redis's asynchronous
 * replication visible, the master's replica is frozen (SIGSTOP) and its link
 * dropped first, so what the master acknowledges meanwhile never reaches it
 * (as when the replica lags or the network splits); then the master
 * is SIGKILLed and the replica thawed, promoted, and the killed node started
 * again (it rejoins as the new master's replica). The publisher retries each
 * failed send with its idempotency key, as careful clients do.
 */
describe.runIf(redisServerAvailable())("Redis Cluster: a master killed while publishing and subscribing", () => {
  let cluster: TestCluster;
  /** Masters already failed over by a test: each test fails another shard. */
  const used = new Set<number>();
  beforeAll(async () => {
    cluster = await startTestCluster();
  }, 60_000);
  afterAll(() => cluster?.stop());

  async function failover(
    label: string,
    args: readonly string[],
    waitForFrozen: (victimAcks: number, failedVictimSends: number) => boolean,
  ): Promise<FailoverReport> {
    const instances = await startInstances(2, { redisUrl: cluster.url, args });
    const everySubscriber: RoomSubscriber[] = [];
    try {
      const [a, b] = instances.list as [Instance, Instance];
      const keys = createRedisKeys(instances.prefix);
      const slotOf = (room: string) => calculateSlot(keys.log(roomTopic(room)));
      /** The first room named `<label>-<n>` whose master satisfies `accept`. */
      async function roomWhere(accept: (master: number) => boolean): Promise<{ room: string; master: number; replicas: number[] }> {
        for (let n = 0; ; n++) {
          const room = `${label}-${n}`;
          const shard = await shardOf(slotOf(room), cluster);
          if (accept(shard.master)) return { room, ...shard };
        }
      }
      const victim = await roomWhere((master) => !used.has(master));
      used.add(victim.master);
      const calm = await roomWhere((master) => master !== victim.master);
      const node = (port: number) => cluster.nodes.find((candidate) => candidate.port === port)!;
      const victimMaster: ClusterNode = node(victim.master);
      const victimReplica: ClusterNode = node(victim.replicas[0]!);

      const token = await instances.token("alice");
      const chat = new Map([a, b].map((instance) => [instance.url, clientFor(ChatService, transportFor(instance.url, "connect", "2"))]));
      let failedSends = 0;
      let failedVictimSends = 0;
      async function send(room: string, text: string): Promise<ChatMessage> {
        for (let attempt = 0; ; attempt++) {
          const instance = attempt % 2 === 0 ? a : b;
          try {
            return (await chat.get(instance.url)!.send({ room, text, idempotencyKey: `${room}/${text}` }, bearer(token))).message!;
          } catch (error) {
            if (!(error instanceof ConnectError) || error.code !== Code.Unavailable || attempt > 400) throw error;
            failedSends++;
            if (room === victim.room) failedVictimSends++;
            // A client's retry policy (not synchronisation): Redis answers at once while the shard is down.
            await new Promise((resolve) => setTimeout(resolve, 50));
          }
        }
      }
      const start = { victim: await send(victim.room, "start"), calm: await send(calm.room, "start") };

      const alternate = (previous: string | undefined) => (previous === a.url ? b.url : a.url);
      const subscribe = (room: string, cursor: string, kinds: typeof subscriberKinds) =>
        kinds.map((kind) => ({ name: `${kind.name} (${room})`, subscriber: startRoomSubscriber({ kind, room, token, cursor, pick: alternate }) }));
      const victimSubscribers = subscribe(victim.room, start.victim.cursor, subscriberKinds);
      everySubscriber.push(...victimSubscribers.map(({ subscriber }) => subscriber));
      const calmSubscribers = subscribe(
        calm.room,
        start.calm.cursor,
        subscriberKinds.filter((kind) => /WebSocket|SSE|EventSource/i.test(kind.name)),
      );
      everySubscriber.push(...calmSubscribers.map(({ subscriber }) => subscriber));

      const total = 150;
      const acknowledged = { victim: [] as ChatMessage[], calm: [] as ChatMessage[] };
      let frozen = false;
      let killed = false;
      const unreplicated: ChatMessage[] = [];
      /** Holds the publisher between two messages, so what was acknowledged before and after a step is exact. */
      let hold: { released: Promise<void>; release: () => void; parked: boolean } | undefined;
      const pause = async () => {
        let release = () => {};
        const released = new Promise<void>((resolve) => (release = resolve));
        const held = (hold = { released, release, parked: false });
        await until(() => held.parked, "the publisher to pause", 30_000);
      };
      const resume = () => {
        const held = hold;
        hold = undefined;
        held?.release();
      };
      const publishing = (async () => {
        for (let i = 1; i <= total; i++) {
          if (hold) {
            hold.parked = true;
            await hold.released;
          }
          const message = await send(victim.room, `m${i}`);
          acknowledged.victim.push(message);
          if (frozen && !killed) unreplicated.push(message);
          acknowledged.calm.push(await send(calm.room, `m${i}`));
        }
      })();
      try {
        await until(() => acknowledged.victim.length >= 50, "50 messages before the failover", 30_000);
        // Frozen, the replica would still find in its socket buffer what the master sent meanwhile:
        // the master also drops its link, so what it acknowledges from now on reaches no replica.
        await pause();
        victimReplica.freeze();
        await withNode(victim.master, (redis) => redis.call("CLIENT", "KILL", "TYPE", "replica"));
        frozen = true;
        resume();
        await until(() => waitForFrozen(unreplicated.length, failedVictimSends), "publishes while the replica is frozen", 30_000);
        // Without --redis-wait the publisher pauses between two messages; with it, it may be inside a
        // send that waits for the replica (it then lands after the failover).
        if (args.length === 0) await pause();
        killed = true;
        await victimMaster.kill();
        resume();
        victimReplica.thaw();
        await until(() => shardOf(slotOf(victim.room), cluster).then((shard) => shard.master === victimReplica.port), "the replica's promotion", 30_000);
        await victimMaster.restart();
        await clusterHealed(cluster);
        await publishing;
      } finally {
        victimReplica.thaw();
        await publishing.catch(() => undefined);
      }

      const last = { victim: acknowledged.victim.at(-1)!, calm: acknowledged.calm.at(-1)! };
      const reached = (subscriber: RoomSubscriber, message: ChatMessage) =>
        subscriber
          .until((events) => events.some((event) => event.kind === "message" && event.id === message.id), `the last message`, 30_000)
          .then(
            () => undefined,
            () => undefined, // gave up (asserted below)
          );
      await Promise.all([
        ...victimSubscribers.map(({ subscriber }) => reached(subscriber, last.victim)),
        ...calmSubscribers.map(({ subscriber }) => reached(subscriber, last.calm)),
      ]);
      await Promise.all([...victimSubscribers, ...calmSubscribers].map(({ subscriber }) => subscriber.stop()));

      // The room's log now, as a new client reads it.
      const reader = startRoomSubscriber({ kind: subscriberKinds[0]!, room: victim.room, token, history: 1000, pick: () => a.url });
      everySubscriber.push(reader);
      await reader.until((events) => events.some((event) => event.kind === "message" && event.id === last.victim.id), "the log", 30_000);
      await reader.stop();
      const topic = roomTopic(victim.room);
      const log = reader.messages().map((event) => ({ id: event.id, text: event.text, offset: decodeCursor(topic, event.cursor).offset }));
      const inLog = new Set(reader.messages().map((event) => event.id));
      const lost = acknowledged.victim.filter((message) => !inLog.has(message.id));
      return { acknowledged, unreplicated, lost, victimSubscribers, calmSubscribers, log, start: start.victim, failedSends };
    } finally {
      await Promise.all(everySubscriber.map((subscriber) => subscriber.stop()));
      await instances.close();
    }
  }

  /**
   * What must hold whatever the replication lost: the other shard's room whole, the publisher
   * through, and in the failed shard's room no client misses a message silently. Each of its
   * clients either has every message of the final log after its cursor, in order, once each, or
   * got a gap first (a cursor of a lost message: the stream continues from the oldest retained
   * message, so what follows the last gap is the final log from there to its end). None is refused.
   */
  function expectInvariants(report: FailoverReport): void {
    const texts = (count: number) => Array.from({ length: count }, (_, i) => `m${i + 1}`);
    expect(report.acknowledged.victim.map((message) => message.text)).toEqual(texts(150));
    expect(report.acknowledged.calm.map((message) => message.text)).toEqual(texts(150));
    for (const { name, subscriber } of report.calmSubscribers) {
      expect(
        subscriber.messages().map((event) => event.id),
        name,
      ).toEqual(report.acknowledged.calm.map((message) => message.id));
    }
    const logIds = report.log.map((entry) => entry.id);
    const inLog = new Set(logIds);
    const afterStart = logIds.slice(logIds.indexOf(report.start.id) + 1);
    for (const { name, subscriber } of report.victimSubscribers) {
      expect(
        subscriber.errors.filter((error) => error.code === Code.InvalidArgument).map((error) => error.rawMessage),
        `${name}: never refused`,
      ).toEqual([]);
      // Between two gaps (or before the first), messages come once each, in publishing order (m<n>, n increasing).
      const runs: string[][] = [[]];
      for (const event of subscriber.events) {
        if (event.kind === "gap") runs.push([]);
        else runs.at(-1)!.push(event.text);
      }
      for (const run of runs) {
        expect(new Set(run).size, `${name}: no duplicate between gaps`).toBe(run.length);
        const numbers = run.map((text) => (text === "start" ? 0 : Number(text.slice(1))));
        expect(numbers, `${name}: in order between gaps`).toEqual([...numbers].sort((x, y) => x - y));
      }
      const lastGap = subscriber.events.findLastIndex((event) => event.kind === "gap");
      const since = subscriber.events.slice(lastGap + 1).flatMap((event) => (event.kind === "message" ? [event.id] : []));
      if (lastGap < 0) {
        // No gap: every message of the final log after its cursor (lost ones it received live before the failover aside).
        expect(
          since.filter((id) => inLog.has(id)),
          `${name}: the whole log after its cursor`,
        ).toEqual(afterStart);
      } else {
        const gap = subscriber.events[lastGap]!;
        expect(gap.kind === "gap" && GapReason[gap.reason], `${name}: why the gap`).toBe("EPOCH_CHANGED");
        expect(since, `${name}: the final log from the gap on`).toEqual(logIds.slice(logIds.indexOf(since[0] ?? "")));
        expect(since.length, `${name}: something after the gap`).toBeGreaterThan(0);
      }
    }
  }

  function describeReport(label: string, report: FailoverReport): string {
    const endings = report.victimSubscribers.map(({ name, subscriber }) => {
      const gaps = subscriber.events.filter((event) => event.kind === "gap").length;
      return `${name}: ${subscriber.messages().length} messages, ${subscriber.errors.length} reconnections, ${gaps} gaps`;
    });
    return (
      `cluster failover ${label}: ${report.unreplicated.length} acknowledged while the replica was frozen, ${report.lost.length} acknowledged then lost ` +
      `(${report.lost.map((message) => message.text).join(",")}), ${report.failedSends} sends retried; log offsets after failover: ` +
      `${report.log.length} messages, last ${report.log.at(-1)?.offset}; ${endings.join("; ")}`
    );
  }

  it("without --redis-wait: acknowledged messages the replica did not have are lost; clients that saw them get a gap, none misses a message silently", async () => {
    // Twenty acknowledged by the master alone while its replica is frozen.
    const report = await failover("no-wait", [], (unreplicated) => unreplicated >= 20);
    console.info(describeReport("without --redis-wait", report));
    expectInvariants(report);
    expect(report.unreplicated.length).toBeGreaterThanOrEqual(20);
    // Exactly what the replica never received is gone from the log, acknowledged though it was.
    expect(report.lost.map((message) => message.text)).toEqual(report.unreplicated.map((message) => message.text));
    // A subscriber that received a lost message resumed from its cursor: past the new master's head,
    // or at an offset a new message took. Its cursor names the lost message, so it got a gap there.
    const lostIds = new Set(report.lost.map((message) => message.id));
    for (const { name, subscriber } of report.victimSubscribers) {
      const sawLost = subscriber.events.findIndex((event) => event.kind === "message" && lostIds.has(event.id));
      if (sawLost >= 0)
        expect(
          subscriber.events.slice(sawLost).some((event) => event.kind === "gap"),
          `${name}: a gap after a lost message`,
        ).toBe(true);
    }
  }, 120_000);

  it("with --redis-wait 1: a publish the replica has not acknowledged answers unavailable, the retry lands after the failover, nothing acknowledged is lost", async () => {
    const report = await failover("wait", ["--redis-wait", "1"], (_, failedVictimSends) => failedVictimSends >= 2);
    console.info(describeReport("with --redis-wait 1", report));
    expectInvariants(report);
    expect(report.unreplicated).toEqual([]);
    expect(report.lost).toEqual([]);
    // A subscriber may receive a message the replica has not acknowledged yet (live delivery does
    // not wait for WAIT); resuming after it, before the publisher's retry re-appended it on the new
    // master or after (a new append time, so another entry for its cursor), it gets a gap. One
    // without a gap received exactly the acknowledged messages, in order.
    const acknowledgedTexts = report.acknowledged.victim.map((message) => message.text);
    for (const { name, subscriber } of report.victimSubscribers) {
      if (subscriber.events.some((event) => event.kind === "gap")) continue;
      expect(
        subscriber.messages().map((event) => event.text),
        name,
      ).toEqual(acknowledgedTexts);
    }
  }, 120_000);
});
