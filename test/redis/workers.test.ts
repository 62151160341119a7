import { spawn } from "node:child_process";
import { once } from "node:events";
import { writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AdminService } from "../../gen/rivulet/admin/v1/admin_pb.js";
import { ChatService, type ChatMessage } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { hashApiKey } from "../../src/auth/api-keys.js";
import { decodeCursor } from "../../src/broker/cursor.js";
import { roomTopic } from "../../src/services/chat.js";
import { deleteKeys, redisAvailable, redisUrl, uniquePrefix } from "../broker/test-redis.js";
import { bearer, clientFor, transportFor } from "../helpers/clients.js";
import { testTempDir } from "../helpers/temp-dir.js";
import { startInstances, type Instance, type Instances } from "./instances.js";
import { startRoomSubscriber, subscriberKinds, type RoomSubscriber } from "./room-subscriber.js";

const root = new URL("../..", import.meta.url).pathname;
const apiKey = "rvk_" + "w".repeat(43);

/** Resolves with the first log line of `instance` that `matches`, already logged or still to come. */
function logged(instance: Instance, matches: (entry: Record<string, unknown>) => boolean, what: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const stdout = instance.process.stdout!;
    const check = () => {
      const entry = instance.logs.find(matches);
      if (entry === undefined) return;
      stdout.off("data", check);
      instance.process.off("exit", exited);
      resolve(entry);
    };
    const exited = () => reject(new Error(`${instance.name} exited before logging ${what}`));
    // instances.ts parses each chunk's lines into `logs` in its own (earlier) 'data' listener.
    stdout.on("data", check);
    instance.process.once("exit", exited);
    check();
  });
}

/** Series of one metric in a Prometheus text exposition, as `{labels} value` pairs. */
function series(text: string, name: string): { labels: Record<string, string>; value: number }[] {
  return [...text.matchAll(new RegExp(`^${name}\\{([^}]*)\\} (\\S+)$`, "gm"))].map(([, labels, value]) => ({
    labels: Object.fromEntries([...labels!.matchAll(/(\w+)="([^"]*)"/g)].map(([, key, label]) => [key!, label!])),
    value: Number(value),
  }));
}

/** Open streams per worker on one transport, as /metrics (any worker) reports them for every worker. */
async function streamsByWorker(url: string, transport: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const streams = series(text, "rivulet_streams").filter(({ labels }) => labels.transport === transport);
  return Object.fromEntries(streams.map(({ labels, value }) => [labels.worker, value]));
}

describe.runIf(redisAvailable())("--workers 2", () => {
  let instances: Instances;
  let host: Instance;
  beforeAll(async () => {
    const file = join(testTempDir("api-keys-"), "keys");
    writeFileSync(file, `${hashApiKey(apiKey)} ops-backend\n`);
    instances = await startInstances(1, { args: ["--workers", "2", "--api-keys-file", file] });
    host = instances.list[0]!;
    await logged(host, (entry) => entry.workers === 2 && String(entry.msg).startsWith("listening on"), "that both workers listen");
  }, 60_000);
  afterAll(() => instances?.close());

  it("spreads subscribers over both workers; each gets every message once, in order, even through a worker's death", async () => {
    const token = await instances.token("alice");
    const room = "workers";
    const chat = clientFor(ChatService, transportFor(host.url, "connect", "2"));
    // A send retried with its idempotency key is stored once: the publisher's own session may be on the worker that dies.
    const send = async (text: string): Promise<ChatMessage> => {
      for (let attempt = 1; ; attempt++) {
        try {
          return (await chat.send({ room, text, idempotencyKey: text }, bearer(token))).message!;
        } catch (error) {
          if (attempt === 20) throw error;
        }
      }
    };
    const start = await send("start");
    const kind = (name: string) => subscriberKinds.find((candidate) => candidate.name.startsWith(name))!;
    const subscribers: { name: string; subscriber: RoomSubscriber }[] = [];
    const published: ChatMessage[] = [];
    /** Publishes `text` and waits until every subscriber has everything published so far. */
    const publish = async (text: string) => {
      published.push(await send(text));
      await Promise.all(subscribers.map(({ subscriber }) => subscriber.until((events) => events.length >= published.length, `${published.length} messages`)));
    };
    try {
      // node:cluster hands connections to the workers in turn, mostly alternating but not strictly: add
      // subscribers of each transport (one connection each, on the shared port, from the cursor of "start")
      // until /metrics shows that transport's streams on both workers. A message each subscriber received
      // proves its stream live, and so counted.
      for (const [transport, name] of [
        ["websocket", "WebSocket"],
        ["sse", "SSE"],
      ] as const) {
        for (let opened = 1; ; opened++) {
          const subscriberKind = kind(name);
          const subscriber = startRoomSubscriber({ kind: subscriberKind, room, token, cursor: start.cursor, pick: () => host.url });
          subscribers.push({ name: `${subscriberKind.name} #${subscribers.length}`, subscriber });
          await publish(`${transport}-${opened}`);
          const byWorker = await streamsByWorker(host.url, transport);
          expect(sum(byWorker), transport).toBe(opened);
          if (opened >= 3 && byWorker["1"]! > 0 && byWorker["2"]! > 0) break;
          if (opened === 12) throw new Error(`${transport} streams never spread over both workers: ${JSON.stringify(byWorker)}`);
        }
      }

      // Each worker is an instance of its own on Redis, with the room's subscribers: AdminService.Info (asked of any worker) lists both.
      const info = await clientFor(AdminService, transportFor(host.url, "connect", "2")).info({}, bearer(apiKey));
      expect(info.instances.map((instance) => instance.id)).toEqual([`${host.instanceId}-1`, `${host.instanceId}-2`]);
      for (const instance of info.instances) expect(instance.topics, instance.id).toEqual([roomTopic(room)]);

      for (let i = 1; i <= 30; i++) published.push(await send(`m${i}`));
      await publish("m31");

      // Worker 1 dies: its subscribers reconnect to the shared port, land on worker 2 (or on worker 1 again once
      // restarted) and resume from their cursors while publishing goes on.
      const worker1 = await logged(host, (entry) => entry.msg === "worker 1 listening", "worker 1's pid");
      process.kill(Number(worker1.pid), "SIGKILL");
      for (let i = 32; i <= 60; i++) published.push(await send(`m${i}`));
      await publish("m61");
      const died = await logged(host, (entry) => entry.msg === "worker 1 died; restarting it", "the restart");
      expect(died).toMatchObject({ worker: 1, pid: Number(worker1.pid), signal: "SIGKILL" });
      await logged(host, (entry) => entry.msg === "worker 1 listening" && entry.pid !== worker1.pid, "the new worker 1 listening");

      const topic = roomTopic(room);
      const positions = published.map((message) => decodeCursor(topic, message.cursor));
      let resumed = 0;
      for (const { name, subscriber } of subscribers) {
        // Exactly the published sequence: no loss, no repeat, no gap.
        const delivered = subscriber.events.map((event) => (event.kind === "message" ? decodeCursor(topic, event.cursor) : { epoch: "gap", offset: -1 }));
        expect(delivered, name).toEqual(positions);
        if (subscriber.errors.length > 0) resumed++;
      }
      // Worker 1 had some of each transport: those streams broke and resumed.
      expect(resumed).toBeGreaterThanOrEqual(2);
    } finally {
      await Promise.all(subscribers.map(({ subscriber }) => subscriber.stop()));
    }
  });

  it("labels every series with its worker and answers /metrics on any worker with both", async () => {
    const text = await (await fetch(`${host.url}/metrics`)).text();
    const workers = new Set(series(text, "process_start_time_seconds").map(({ labels }) => labels.worker));
    expect([...workers].sort()).toEqual(["1", "2"]);
    // The primary's own counter, unlabelled: one restart, the SIGKILL above.
    expect(text).toMatch(/^rivulet_worker_restarts_total 1$/m);
  });

  it("keeps /healthz and /readyz per worker", async () => {
    expect(await (await fetch(`${host.url}/healthz`)).text()).toBe("ok\n");
    expect(await (await fetch(`${host.url}/readyz`)).text()).toBe("ready\n");
  });

  it("shuts every worker down on SIGTERM and exits 0", async () => {
    await host.terminate();
    expect(host.process.exitCode).toBe(0);
    const shutDown = host.logs.filter((entry) => entry.msg === "shut down").map((entry) => entry.worker ?? "primary");
    expect(shutDown.sort()).toEqual([1, 2, "primary"]);
  });
});

describe("--workers refusals", () => {
  const run = async (args: readonly string[]) => {
    const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts", "--host", "127.0.0.1", "--log-level", "warn", ...args], {
      cwd: root,
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const [code] = (await once(child, "exit")) as [number | null];
    return { code, stderr };
  };

  it("refuses the memory broker in one line, with exit code 2", async () => {
    const { code, stderr } = await run(["--workers", "2", "--port", "0"]);
    expect(code).toBe(2);
    expect(stderr.split("\n")[0]).toBe("rivulet: --workers 2 needs a shared broker: pass --broker redis://… (the memory broker lives in one process)");
  });

  it.runIf(redisAvailable())("exits 1 with the workers' error, once, when they cannot listen", async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
    const port = (taken.address() as { port: number }).port;
    const prefix = uniquePrefix();
    try {
      const { code, stderr } = await run(["--workers", "2", "--port", String(port), "--broker", redisUrl, "--redis-prefix", prefix]);
      expect(code).toBe(1);
      expect(stderr).toBe(`rivulet: port ${port} is in use; pass --port\n`);
    } finally {
      taken.close();
      await deleteKeys(prefix);
    }
  });
});

const sum = (byWorker: Record<string, number>) => Object.values(byWorker).reduce((total, count) => total + count, 0);
