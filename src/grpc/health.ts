import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import {
  type Health,
  HealthCheckResponse_ServingStatus as ServingStatus,
  HealthCheckResponseSchema,
  type HealthCheckResponse,
} from "../../gen/grpc/health/v1/health_pb.js";
import type { ReadinessWatch } from "./readiness-watch.js";

/**
 * `grpc.health.v1.Health` (https://github.com/grpc/grpc/blob/master/doc/health-checking.md)
 * for the whole server (`""`) and each of `services` (full names such as
 * `rivulet.chat.v1.ChatService`).
 *
 * Every service follows one readiness, the one GET /readyz reports: each
 * depends on the broker, so each is SERVING while it answers and NOT_SERVING
 * while it does not. Check and List ask now; Watch sends the status at once,
 * then each change (conflated: a slow reader gets the latest).
 *
 * Health asks for no credentials, so no per-user limit counts its calls: at
 * most `maxWatches` Watch calls are open at once, server-wide; one more fails
 * with `resource_exhausted` (a probe retries with backoff, as the spec says).
 */
export function createHealthService(services: readonly string[], readiness: ReadinessWatch, maxWatches: number): ServiceImpl<typeof Health> {
  const known = new Set(["", ...services]);
  let openWatches = 0;
  const statusOf = (ready: boolean): HealthCheckResponse =>
    create(HealthCheckResponseSchema, { status: ready ? ServingStatus.SERVING : ServingStatus.NOT_SERVING });

  return {
    async check({ service }) {
      // The spec: an unknown service fails Check with NOT_FOUND.
      if (!known.has(service)) throw new ConnectError(`unknown service ${JSON.stringify(service)}`, Code.NotFound);
      return statusOf(await readiness.check());
    },

    async list() {
      const status = statusOf(await readiness.check());
      return { statuses: Object.fromEntries([...known].map((name) => [name, status])) };
    },

    async *watch({ service }, context) {
      if (openWatches >= maxWatches) throw new ConnectError(`too many health watches (at most ${maxWatches})`, Code.ResourceExhausted);
      openWatches++;
      try {
        yield* watchStatus(service, context.signal);
      } finally {
        openWatches--;
      }
    },
  };

  /** The status of `service` now, then each change, until `signal` aborts. */
  async function* watchStatus(service: string, signal: AbortSignal): AsyncGenerator<HealthCheckResponse> {
    if (!known.has(service)) {
      // The spec: an unknown service gets SERVICE_UNKNOWN and the call stays
      // open (the service might become known; Rivulet's never change).
      yield create(HealthCheckResponseSchema, { status: ServingStatus.SERVICE_UNKNOWN });
      await new Promise<void>((resolve) => {
        if (signal.aborted) resolve();
        else signal.addEventListener("abort", () => resolve(), { once: true });
      });
      return;
    }
    for await (const ready of readiness.watch(signal)) yield statusOf(ready);
  }
}
