import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import type { ConnectionsReply, ConnectionsRequest } from "../load/connections-protocol.js";
import type { BenchOptions } from "../lib/bench-options.js";
import { createHistogram } from "../lib/histogram.js";
import { markerPayload, nowMicros } from "../lib/marker.js";
import { treePids, treeUsage, waitForExit } from "../lib/process-tree.js";
import type { ProbeStats } from "../lib/probe-protocol.js";
import { createControlPublisher, createRivuletPublisher, type Publisher } from "../lib/publisher.js";
import type { ConnectionsResult, FanOutMessage, Row } from "../lib/results.js";
import { benchSecret, rivuletArgs } from "../lib/rivulet-server.js";
import { loadCore, serverCore, spawnBenchProcess, type BenchProcess } from "../lib/spawn-process.js";
import { allTargets, targetNamed } from "../targets/all-targets.js";
import type { Target, Topic } from "../targets/target.js";
import { rowHead } from "./run-per-target.js";

const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

/**
 * Connections one load process opens at most: its file-descriptor limit (`ulimit -Hn`, 20,000 on the bench machine,
 * which a process without CAP_SYS_RESOURCE cannot raise) less room for Node's own descriptors.
 */
const perLoadProcess = 16_000;
/**
 * Handshakes in flight over all load processes: four fifths of the server's listen backlog (Node listens with 511,
 * whatever somaxconn allows), at most 500 per load process. With 1,000 in flight against a backlog of 511, each
 * 10,000-connection run overflowed the accept queue 2,000 to 3,700 times, and every overflow cost its client a
 * SYN retransmit (1 s or more) counted in the time to connect.
 */
function inFlightTotal(backlog: string): number {
  const length = Number(backlog);
  return Number.isInteger(length) && length > 0 ? Math.max(1, Math.floor(length * 0.8)) : 400;
}
/** Source addresses per pass: 100,000 connections are 6,250 per address, far from the 28,232 ephemeral ports each has. */
const addressesPerPass = 16;

/** A publish that takes longer means the server accepts no publisher: the row says so instead of waiting. */
const publishTimeoutMs = 30_000;

/** Subscribers closed after the server refused more, so that it can accept the publisher's connection. */
const releaseWhenFull = 70;

/** What runs without `--targets`: one Rivulet process, Rivulet with 2 and 6 workers, bare `ws` and Socket.IO. */
const defaultTargetNames = [
  "rivulet-ws",
  "rivulet-sse",
  "rivulet-ws-workers-2",
  "rivulet-sse-workers-2",
  "rivulet-ws-workers-6",
  "rivulet-sse-workers-6",
  "bare-ws",
  "socket.io",
];

/** The heartbeat each server sends its idle connections, with the defaults the bench runs them with. */
function heartbeatOf(target: Target): string {
  if (target.server.kind === "rivulet")
    return target.family === "sse" ? "SSE comment every 15 s (default --keepalive)" : "WebSocket ping every 15 s (default --keepalive)";
  if (target.name === "socket.io") return "Engine.IO ping every 25 s (default pingInterval)";
  return "none";
}

let pass = 0;
/**
 * A fresh block of loopback source addresses for each pass (127.1.<pass>.1 to .16): the connections a pass closes
 * leave their ports in TIME_WAIT for a minute, which the next pass then never meets.
 */
function passAddresses(): string[] {
  const block = (pass++ % 250) + 1;
  return Array.from({ length: addressesPerPass }, (_, i) => `127.1.${block}.${i + 1}`);
}

/**
 * The kernel's count of connections dropped because a listen queue was full (TcpExt ListenOverflows), machine-wide:
 * each one costs its client a SYN retransmit (1 s, then 3 s, …), which shows in the time to connect.
 */
function listenOverflows(): number {
  try {
    const lines = readFileSync("/proc/net/netstat", "utf8").split("\n");
    const names = lines.find((line) => line.startsWith("TcpExt:"))?.split(/\s+/) ?? [];
    const values = lines.filter((line) => line.startsWith("TcpExt:"))[1]?.split(/\s+/) ?? [];
    return Number(values[names.indexOf("ListenOverflows")] ?? Number.NaN);
  } catch {
    return Number.NaN;
  }
}

/** The listening socket's accept-queue length (`ss` shows it as Send-Q): Node's default is 511, below somaxconn. */
function listenBacklog(port: number): string {
  const line = spawnSync("ss", ["-Hltn", `sport = :${port}`], { encoding: "utf8" })
    .stdout?.trim()
    .split("\n")[0];
  return line?.split(/\s+/)[2] ?? "unknown";
}

/** The limits of this machine that bound how many connections a process and a source address can have. */
function machineLimits(): string {
  const read = (path: string) => {
    try {
      return readFileSync(path, "utf8").trim().replace(/\s+/g, "-");
    } catch {
      return "unknown";
    }
  };
  const descriptors = spawnSync("sh", ["-c", "ulimit -Hn"], { encoding: "utf8" }).stdout?.trim() || "unknown";
  return (
    `file descriptors ${descriptors} per process (ulimit -Hn; servers and load processes alike), ` +
    `listen backlog ${read("/proc/sys/net/core/somaxconn")} (somaxconn), ephemeral ports ${read("/proc/sys/net/ipv4/ip_local_port_range")} per source address`
  );
}

/**
 * The connections scenario (issue 17): N idle subscribers of one room, spread
 * over several load processes and loopback source addresses. Per target: how
 * many it held (and where it stopped), the time to connect them all, the
 * server's RSS per connection, its CPU over an idle window (heartbeats
 * included), and one message published to all of them, timed to its last
 * delivery. Bounded everywhere: a target that takes no more is recorded, not
 * waited for.
 */
export async function runConnections(options: BenchOptions, log: (line: string) => void): Promise<Row[]> {
  const targets = (options.targets === allTargets ? defaultTargetNames.map(targetNamed) : options.targets).filter((target) => {
    if (target.family === "websocket" || target.family === "sse") return true;
    log(`connections · ${target.label}: skipped (this scenario opens WebSocket and SSE subscribers only)`);
    return false;
  });
  const caseName = `${options.connections} idle connections`;
  const rows: Row[] = [];
  for (const target of targets) {
    log(`connections · ${caseName} · ${target.label}`);
    const head = rowHead("connections", caseName, target);
    try {
      rows.push({ ...head, connections: await measure(target, options, log) });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      log(`  ${message}`);
      rows.push({ ...head, skipped: error instanceof SkipTarget ? message : `failed: ${message}` });
    }
  }
  return rows;
}

/** The target could not be measured at all (its server did not start); the row says why. */
class SkipTarget extends Error {
  override readonly name = "SkipTarget";
}

/** The server's RSS: after a full GC through the probe for one process; summed from /proc (no GC) over a server's workers. */
async function serverRss(server: BenchProcess, workers: boolean): Promise<number> {
  if (workers) return treeUsage(server.child.pid ?? 0).rssBytes;
  return (await server.ask<ProbeStats>({ type: "probe-stats", collectGarbage: true }, "probe-stats", 60_000)).rssBytes;
}

async function measure(target: Target, options: BenchOptions, log: (line: string) => void): Promise<ConnectionsResult> {
  const workers = target.server.workers;
  // `--workers 1` is one process on the Redis broker: measured like one process (pinned, the probe's GC).
  const clustered = (workers ?? 1) > 1;
  const prefix = `bench-${randomBytes(6).toString("hex")}`;
  const serverArgs = workers ? ["--workers", String(workers), "--broker", redisUrl, "--redis-prefix", prefix] : [];
  const server =
    target.server.kind === "rivulet"
      ? // Workers share both cores (the primary's affinity is inherited): pinned to one, two workers would be one core's worth.
        spawnBenchProcess({ script: "src/main.ts", args: rivuletArgs(serverArgs), core: clustered ? undefined : serverCore, probe: true })
      : spawnBenchProcess({ script: target.server.script ?? "", core: serverCore, probe: true });
  const loads: BenchProcess[] = [];
  try {
    let ports: { port: number; controlPort: number };
    try {
      ports = await Promise.race([server.ports, sleep(30_000).then(() => Promise.reject(new Error("did not listen in 30 s")))]);
    } catch (error) {
      throw new SkipTarget(`server did not start: ${error instanceof Error ? error.message : String(error)}`);
    }
    const publisher: Publisher =
      target.server.kind === "rivulet" ? await createRivuletPublisher(ports.port, benchSecret) : createControlPublisher(ports.controlPort);
    const rssBefore = await serverRss(server, clustered);

    const processes = Math.max(2, Math.ceil(options.connections / perLoadProcess));
    for (let i = 0; i < processes; i++) loads.push(spawnBenchProcess({ script: "bench/load/connections-worker.ts", core: loadCore }));
    const addresses = passAddresses();
    const topic: Topic = { kind: "room", name: `connections-${randomBytes(4).toString("hex")}` };
    // A slow server (six workers fed by one primary took 240 s for 83,000) gets time; one that stopped answering does not.
    const deadlineMs = options.quick ? 300_000 : 900_000;
    const stallMs = 30_000;
    const ask = <T extends ConnectionsReply["type"]>(load: BenchProcess, request: ConnectionsRequest, replyType: T, timeoutMs?: number) =>
      load.ask<Extract<ConnectionsReply, { type: T }>>(request, replyType, timeoutMs);
    const askAll = <T extends ConnectionsReply["type"]>(request: ConnectionsRequest, replyType: T, timeoutMs?: number) =>
      Promise.all(loads.map((load) => ask(load, request, replyType, timeoutMs)));

    log(`  opening ${options.connections} connections from ${processes} load processes over ${addresses.length} source addresses`);
    const backlog = listenBacklog(ports.port);
    const overflowsBefore = listenOverflows();
    const opened = await Promise.all(
      loads.map((load, i) =>
        ask(
          load,
          {
            type: "open",
            target: target.name,
            port: ports.port,
            secret: benchSecret,
            sourceAddresses: addresses,
            userPrefix: `c${i}-`,
            count: Math.floor(options.connections / processes) + (i < options.connections % processes ? 1 : 0),
            topic,
            inFlight: Math.max(1, Math.min(500, Math.floor(inFlightTotal(backlog) / processes))),
            failureLimit: 100,
            stallMs,
            deadlineMs,
          },
          "opened",
          // Minting the tokens comes first, then the bounded opening.
          deadlineMs + 120_000,
        ),
      ),
    );
    const overflows = listenOverflows() - overflowsBefore;
    const sum = (values: readonly number[]) => values.reduce((a, b) => a + b, 0);
    const connected = sum(opened.map((o) => o.connected));
    const answeredAt = opened.filter((o) => o.lastAnsweredAt > 0).map((o) => o.lastAnsweredAt);
    const connectSeconds = answeredAt.length > 0 ? (Math.max(...answeredAt) - Math.min(...opened.map((o) => o.startedAt))) / 1e6 : 0;
    let firstError = opened.find((o) => o.firstError)?.firstError;
    log(`  ${connected} connected in ${connectSeconds.toFixed(1)} s${firstError ? `; first error: ${firstError}` : ""}`);
    // A server that refused connections is likely out of file descriptors: it could not accept the publisher's
    // connection either. Closing a few subscribers gives it some back; the row says how many.
    const refused = opened.some((o) => o.failed > 0 || o.timedOut > 0);
    let released = 0;
    if (refused && connected > 0) {
      const after = await askAll({ type: "release", count: Math.ceil(releaseWhenFull / processes) }, "released");
      released = connected - sum(after.map((a) => a.connected));
      log(`  released ${released} connections so that the server has descriptors for the publisher`);
    }
    const serverExit = () =>
      server.child.exitCode !== null || server.child.signalCode !== null
        ? `the server exited (${server.child.signalCode ?? server.child.exitCode}): ${server.stderr().trim().split("\n").slice(-2).join(" | ")}`
        : undefined;
    const limitOf = (held: number) => {
      if (held >= options.connections && !serverExit()) return undefined;
      return [`reached ${connected} of ${options.connections}`, firstError ? `first error: ${firstError}` : undefined, serverExit()].filter(Boolean).join("; ");
    };
    const base = {
      requested: options.connections,
      attempted: sum(opened.map((o) => o.attempted)),
      failed: sum(opened.map((o) => o.failed)),
      timedOut: sum(opened.map((o) => o.timedOut)),
      loadProcesses: processes,
      sourceAddresses: addresses.length,
      connectSeconds,
      released,
      heartbeat: heartbeatOf(target),
      idleWindowSeconds: options.connectionsIdleMs / 1000,
      machineLimits: machineLimits(),
      listenBacklog: backlog,
      listenOverflows: overflows,
    };
    if (connected === 0 || serverExit()) {
      return {
        ...base,
        connected,
        notSubscribed: connected,
        firstError,
        serverProcesses: 0,
        rssBytes: 0,
        rssBytesPerConnection: 0,
        rssMethod: clustered ? "no GC" : "after GC",
        idleCpuSeconds: Number.NaN,
        endedWhileIdle: 0,
        fanOut: [],
        limit: limitOf(0),
      };
    }

    /**
     * Publishes one marked message and waits until every open connection has one, or until deliveries stop coming
     * for `stallMs` (bounded: a connection that is not subscribed never gets it).
     */
    const round = async (stallMs: number): Promise<{ sent: number; status: Extract<ConnectionsReply, { type: "round-status" }>[] }> => {
      await askAll({ type: "round-reset" }, "round-reset-done");
      const sent = nowMicros();
      await Promise.race([
        publisher.publish(topic, markerPayload(64, sent)),
        sleep(publishTimeoutMs, undefined, { ref: false }).then(() => Promise.reject(new Error(`a publish did not complete in ${publishTimeoutMs / 1000} s`))),
      ]);
      let status: Extract<ConnectionsReply, { type: "round-status" }>[];
      let delivered = -1;
      let progressAt = Date.now();
      for (;;) {
        await sleep(100);
        status = await askAll({ type: "round-status" }, "round-status");
        const received = sum(status.map((s) => s.received));
        const open = sum(status.map((s) => s.connected));
        if (received >= open) break;
        const now = sum(status.map((s) => s.delivered));
        if (now !== delivered) {
          delivered = now;
          progressAt = Date.now();
        } else if (Date.now() - progressAt > stallMs) break;
      }
      return { sent, status };
    };

    try {
      // Warm-up: rounds until every connection got a message (its subscription is in place), at most five.
      let notSubscribed = connected;
      for (let attempt = 0; attempt < 5 && notSubscribed > 0; attempt++) {
        const { status } = await round(3000);
        notSubscribed = sum(status.map((s) => s.connected - s.received));
      }
      if (notSubscribed > 0) log(`  ${notSubscribed} connections never received a warm-up message`);

      const rssAfter = await serverRss(server, clustered);
      const holding = sum((await askAll({ type: "round-status" }, "round-status")).map((s) => s.connected));
      const serverProcesses = treeUsage(server.child.pid ?? 0).processes;

      // The idle window: nothing published, the server's own timers (heartbeats) only.
      const cpuBefore = treeUsage(server.child.pid ?? 0).cpuSeconds;
      const endedBefore = sum((await askAll({ type: "round-status" }, "round-status")).map((s) => s.endedAfterOpen));
      await sleep(options.connectionsIdleMs);
      const cpuAfter = treeUsage(server.child.pid ?? 0).cpuSeconds;
      const afterIdle = await askAll({ type: "round-status" }, "round-status");
      const endedWhileIdle = sum(afterIdle.map((s) => s.endedAfterOpen)) - endedBefore;
      log(
        `  idle ${options.connectionsIdleMs / 1000} s: ${(cpuAfter - cpuBefore).toFixed(2)} CPU-s; RSS ${((rssAfter - rssBefore) / holding / 1024).toFixed(1)} KiB per connection`,
      );

      const fanOut: FanOutMessage[] = [];
      for (let i = 0; i < options.connectionsFanOutMessages; i++) {
        const { sent, status } = await round(5000);
        const latency = createHistogram();
        for (const s of status) latency.merge(s.latency);
        const lastAt = Math.max(...status.map((s) => s.lastAt));
        fanOut.push({
          delivered: sum(status.map((s) => s.delivered)),
          expected: sum(status.map((s) => s.connected)),
          lastDeliveryMs: lastAt > 0 ? (lastAt - sent) / 1000 : 0,
          p50Ms: latency.percentile(50) / 1000,
          p99Ms: latency.percentile(99) / 1000,
        });
        log(`  fan-out ${fanOut[i]!.delivered}/${fanOut[i]!.expected}, last delivery after ${fanOut[i]!.lastDeliveryMs.toFixed(1)} ms`);
      }
      firstError ??= afterIdle.find((s) => s.firstError)?.firstError;
      const still = sum((await askAll({ type: "round-status" }, "round-status")).map((s) => s.connected));
      await askAll({ type: "close" }, "closed");
      return {
        ...base,
        connected: holding,
        notSubscribed,
        firstError,
        serverProcesses,
        rssBytes: rssAfter,
        rssBytesPerConnection: (rssAfter - rssBefore) / holding,
        rssMethod: clustered ? "no GC" : "after GC",
        idleCpuSeconds: cpuAfter - cpuBefore,
        endedWhileIdle,
        fanOut,
        limit: limitOf(still),
      };
    } catch (error) {
      // Held but not measurable (the server accepts no publisher, or stopped answering): the connect figures stand,
      // and the memory as /proc reads it (no GC: the probe may be as stuck as the server).
      const message = error instanceof Error ? error.message : String(error);
      log(`  ${message}`);
      const usage = treeUsage(server.child.pid ?? 0);
      return {
        ...base,
        connected,
        notSubscribed: connected,
        firstError,
        serverProcesses: usage.processes,
        rssBytes: usage.rssBytes,
        rssBytesPerConnection: (usage.rssBytes - rssBefore) / connected,
        rssMethod: "no GC",
        idleCpuSeconds: Number.NaN,
        endedWhileIdle: 0,
        fanOut: [],
        limit: `${limitOf(connected) ?? `reached ${connected} of ${options.connections}`}; then ${message}`,
      };
    }
  } finally {
    const serverPids = treePids(server.child.pid ?? 0);
    await Promise.all([server.stop(), ...loads.map((load) => load.stop())]);
    if (workers) {
      // The keys go once the workers are gone: one still shutting down would write its presence again.
      await waitForExit(serverPids, 15_000);
      // Workers whose primary is gone and that are still shutting down (slowly, at their descriptor limit) are killed.
      for (const pid of stillRunning(serverPids)) process.kill(pid, "SIGKILL");
      await deleteKeys(prefix);
    }
  }
}

/** Those of `pids` still running. */
function stillRunning(pids: readonly number[]): number[] {
  return pids.filter((pid) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  });
}

/** Removes what a workers run left in Redis under its prefix. */
async function deleteKeys(prefix: string): Promise<void> {
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `*${prefix}*`, "COUNT", 1000);
      cursor = next;
      if (keys.length > 0) await redis.unlink(...keys);
    } while (cursor !== "0");
  } catch {
    // No Redis: a workers server could not have started either.
  } finally {
    redis.disconnect();
  }
}
