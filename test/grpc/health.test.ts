// gRPC health (grpc.health.v1.Health) with a generated Connect client over
// gRPC on h2c, as Kubernetes gRPC probes and grpc-health-probe call it: no
// credentials, Check per service, and Watch following the broker's readiness.
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../gen/grpc/health/v1/health_pb.js";
import { AdminService } from "../../gen/rivulet/admin/v1/admin_pb.js";
import { ChatService } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { NotificationService } from "../../gen/rivulet/notify/v1/notify_pb.js";
import { ProgressService } from "../../gen/rivulet/progress/v1/progress_pb.js";
import { redisServerAvailable, startPrivateRedis, uniquePrefix, type PrivateRedis } from "../broker/test-redis.js";
import { maxHealthWatches } from "../../src/grpc/grpc-services.js";
import { clientFor, transportFor } from "../helpers/clients.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const rivuletServices = [ChatService, NotificationService, ProgressService, AdminService].map((service) => service.typeName);

/** A Health client over gRPC on h2c, sending no credentials. */
const healthClient = (url: string): Client<typeof Health> => createClient(Health, createGrpcTransport({ baseUrl: url }));

describe("gRPC health on the memory broker", () => {
  let server: TestServer;
  let health: Client<typeof Health>;
  beforeAll(async () => {
    server = await startTestServer();
    health = healthClient(server.url);
  });
  afterAll(() => server?.close());

  it("answers Check SERVING for the server and each Rivulet service, without credentials", async () => {
    for (const service of ["", ...rivuletServices]) {
      expect((await health.check({ service })).status, service).toBe(Status.SERVING);
    }
  });

  it("fails Check for an unknown service with NOT_FOUND", async () => {
    const error = await health.check({ service: "rivulet.nope.v1.NopeService" }).catch((reason: unknown) => reason);
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.NotFound);
  });

  it("lists every service's status", async () => {
    const { statuses } = await health.list({});
    expect(Object.keys(statuses).sort()).toEqual(["", ...rivuletServices].sort());
    for (const response of Object.values(statuses)) expect(response.status).toBe(Status.SERVING);
  });

  it("answers Watch for an unknown service with SERVICE_UNKNOWN and keeps the call open", async () => {
    const abort = new AbortController();
    const watch = health.watch({ service: "rivulet.nope.v1.NopeService" }, { signal: abort.signal })[Symbol.asyncIterator]();
    expect((await watch.next()).value).toMatchObject({ status: Status.SERVICE_UNKNOWN });
    const next = watch.next();
    abort.abort();
    await expect(next).rejects.toMatchObject({ code: Code.Canceled });
  });

  it(`holds at most ${maxHealthWatches} Watch calls at once (they carry no credentials): one more is resource_exhausted until one ends`, async () => {
    // Over several HTTP/2 connections, as many probes would come; each call with its own signal to end it.
    const clients = Array.from({ length: 4 }, () => healthClient(server.url));
    const calls: AbortController[] = [];
    const open = (i: number) => {
      const call = new AbortController();
      calls.push(call);
      return clients[i % clients.length]!.watch({ service: "" }, { signal: call.signal })[Symbol.asyncIterator]();
    };
    try {
      const watches = Array.from({ length: maxHealthWatches }, (_, i) => open(i));
      for (const watch of await Promise.all(watches.map((watch) => watch.next()))) expect(watch.value).toMatchObject({ status: Status.SERVING });
      await expect(open(0).next()).rejects.toMatchObject({ code: Code.ResourceExhausted });
      // Ending one frees its place (the server sees the cancel a moment later).
      calls[0]!.abort();
      const freed = await vi.waitFor(() => open(1).next(), { timeout: 10_000, interval: 50 });
      expect(freed.value).toMatchObject({ status: Status.SERVING });
    } finally {
      for (const call of calls) call.abort();
    }
  }, 60_000);

  it("exempts only health from credentials: Rivulet's services still refuse a call without a token", async () => {
    const chat = clientFor(ChatService, transportFor(server.url, "grpc", "2"));
    await expect(chat.send({ room: "health", text: "no token" })).rejects.toMatchObject({ code: Code.Unauthenticated });
  });

  it("is not carried by the SSE bridge (gRPC only; HTTP probes use /readyz)", async () => {
    const response = await fetch(`${server.url}/sse/grpc.health.v1.Health/Watch?message=${encodeURIComponent("{}")}`);
    expect(response.status).toBe(404);
    await response.body?.cancel();
  });
});

// Stopping Redis would break every other suite on the shared server: this one runs its own.
describe.runIf(redisServerAvailable())("gRPC health across a Redis outage", () => {
  let redis: PrivateRedis;
  let server: TestServer;
  beforeAll(async () => {
    redis = await startPrivateRedis();
    server = await startTestServer({ config: { broker: redis.url, redisPrefix: uniquePrefix() } });
  }, 60_000);
  afterAll(async () => {
    await server?.close();
    await redis?.stop();
  });

  it("Watch streams SERVING, NOT_SERVING while Redis is down, then SERVING again; Check agrees", async () => {
    const health = healthClient(server.url);
    const abort = new AbortController();
    try {
      // One watch of the whole server and one of a service: each says SERVING first.
      const watches = ["", ChatService.typeName].map((service) => health.watch({ service }, { signal: abort.signal })[Symbol.asyncIterator]());
      const nextStatuses = async () => Promise.all(watches.map(async (watch) => (await watch.next()).value?.status));
      expect(await nextStatuses()).toEqual([Status.SERVING, Status.SERVING]);

      await redis.stop();
      expect(await nextStatuses()).toEqual([Status.NOT_SERVING, Status.NOT_SERVING]);
      expect((await health.check({ service: ChatService.typeName })).status).toBe(Status.NOT_SERVING);
      expect((await health.check({ service: "" })).status).toBe(Status.NOT_SERVING);

      await redis.start();
      expect(await nextStatuses()).toEqual([Status.SERVING, Status.SERVING]);
      expect((await health.check({ service: ChatService.typeName })).status).toBe(Status.SERVING);
    } finally {
      abort.abort();
    }
  }, 60_000);
});
