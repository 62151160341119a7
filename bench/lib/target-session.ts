import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { LoadReply } from "../load/load-protocol.js";
import type { SubscriberPlan } from "../load/load-protocol.js";
import type { Target, Topic } from "../targets/target.js";
import { markerPayload, nowMicros } from "./marker.js";
import type { ProbeStats } from "./probe-protocol.js";
import { createControlPublisher, createRivuletPublisher, type Publisher } from "./publisher.js";
import { benchSecret, rivuletArgs } from "./rivulet-server.js";
import { loadCore, serverCore, spawnBenchProcess, type BenchProcess } from "./spawn-process.js";
import { sourceAddresses } from "./source-addresses.js";

/** A measurement the bench cannot make on this checkout (a bridge or broker not there yet); the row says why. */
export class SkipError extends Error {
  override readonly name = "SkipError";
}

/** One target's server process, its load generator and a publisher. */
export interface TargetSession {
  readonly target: Target;
  readonly server: BenchProcess;
  readonly load: BenchProcess;
  readonly publisher: Publisher;
  /** Opens the subscribers' connections; throws SkipError when the server refuses every one (404: no such bridge). */
  open(subscribers: readonly SubscriberPlan[]): Promise<number>;
  /** Publishes to every topic until every connection got one message per topic it carries, in one round. */
  warmUp(topics: readonly Topic[], payloadBytes: number): Promise<void>;
  probe(collectGarbage?: boolean): Promise<ProbeStats>;
  resetProbe(): Promise<void>;
  closeSubscribers(): Promise<void>;
  stop(): Promise<void>;
}

/** How a session's servers start. */
export interface SessionOptions {
  /** Added to Rivulet's command line, or to a bench server's (bench/servers/socket-io.ts takes `--redis <url> --redis-prefix <p>`). */
  readonly serverArgs?: readonly string[];
  /** Publish through a second server instance (same arguments) instead of the subscribers' one: scenario (e). */
  readonly separatePublisherServer?: boolean;
  /** Write a V8 CPU profile of each server process into this directory (`--cpu-prof`). */
  readonly cpuProfileDirectory?: string;
}

/** Starts a server for `target` on the server core and a load generator on the other. */
export async function startTargetSession(target: Target, options: SessionOptions = {}): Promise<TargetSession> {
  let started = 0;
  const startServer = () => {
    const nodeArgs = [
      ...(options.cpuProfileDirectory
        ? // Node's own file names (with pid and thread id): a fixed name would overwrite the profile of an earlier process of the same target.
          ["--cpu-prof", "--cpu-prof-dir", join(options.cpuProfileDirectory, `${target.name}-${Date.now()}-${started++}`)]
        : []),
      // Node flags for every server of the run, for experiments (`BENCH_SERVER_NODE_ARGS="--max-semi-space-size=64"`).
      ...(process.env.BENCH_SERVER_NODE_ARGS?.split(" ").filter(Boolean) ?? []),
    ];
    return target.server.kind === "rivulet"
      ? spawnBenchProcess({ script: "src/main.ts", args: rivuletArgs(options.serverArgs), core: serverCore, probe: true, nodeArgs })
      : spawnBenchProcess({ script: target.server.script ?? "", args: options.serverArgs, core: serverCore, probe: true, nodeArgs });
  };
  const server = startServer();
  const publishingServer = options.separatePublisherServer ? startServer() : undefined;
  const load = spawnBenchProcess({ script: "bench/load/load-worker.ts", core: loadCore });
  const stopAll = () => Promise.all([server.stop(), load.stop(), publishingServer?.stop()]).then(() => undefined);
  let ports: { port: number; controlPort: number };
  let connections = 0;
  let publishPorts: { port: number; controlPort: number };
  try {
    const timeout = sleep(30_000).then(() => Promise.reject(new Error("server did not start in 30 s")));
    [ports, publishPorts] = await Promise.race([Promise.all([server.ports, (publishingServer ?? server).ports]), timeout]);
  } catch (error) {
    await stopAll();
    throw new SkipError(`server did not start: ${error instanceof Error ? error.message : String(error)}`);
  }
  const publisher =
    target.server.kind === "rivulet" ? await createRivuletPublisher(publishPorts.port, benchSecret) : createControlPublisher(publishPorts.controlPort);
  return {
    target,
    server,
    load,
    publisher,
    async open(subscribers) {
      const opened = await load.ask<Extract<LoadReply, { type: "opened" }>>(
        { type: "open", target: target.name, port: ports.port, secret: benchSecret, sourceAddresses: sourceAddresses(), subscribers },
        "opened",
      );
      connections = opened.connections;
      if (opened.connections > 0 && opened.ended >= opened.connections)
        throw new SkipError(`${target.label} refused its subscribers: ${opened.firstEnd ?? "no reason"}`);
      return opened.connections;
    },
    async warmUp(topics, payloadBytes) {
      let status: Extract<LoadReply, { type: "round-status" }> | undefined;
      for (let round = 0; round < 20; round++) {
        await load.ask({ type: "round-reset" }, "round-reset-done");
        await publishAll(publisher, topics, () => markerPayload(payloadBytes, nowMicros()));
        const deadline = Date.now() + 2000;
        do {
          await sleep(50);
          status = await load.ask<Extract<LoadReply, { type: "round-status" }>>({ type: "round-status" }, "round-status");
        } while (status.notReady > 0 && status.ended < connections && Date.now() < deadline);
        if (status.notReady === 0) return;
        // Every connection ended: the server refuses this transport (404 where a bridge is not mounted).
        if (status.ended >= connections) throw new SkipError(`${target.label} refused its subscribers: ${status.firstEnd ?? "no reason"}`);
      }
      throw new Error(`${status?.notReady} connections never received the warm-up messages (${status?.ended} ended: ${status?.firstEnd ?? "-"})`);
    },
    probe: (collectGarbage = false) => server.ask<ProbeStats>({ type: "probe-stats", collectGarbage }, "probe-stats"),
    async resetProbe() {
      await server.ask({ type: "probe-reset" }, "probe-reset-done");
    },
    async closeSubscribers() {
      await load.ask({ type: "close" }, "closed");
    },
    stop: stopAll,
  };
}

/** Publishes one payload to each topic, at most 64 at a time. */
export async function publishAll(publisher: Publisher, topics: readonly Topic[], payload: () => string): Promise<void> {
  for (let i = 0; i < topics.length; i += 64) {
    await Promise.all(topics.slice(i, i + 64).map((topic) => publisher.publish(topic, payload())));
  }
}
