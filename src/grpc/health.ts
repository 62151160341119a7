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
 */
export function createHealthService(services: readonly string[], readiness: ReadinessWatch): ServiceImpl<typeof Health> {
  const known = new Set(["", ...services]);
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
      if (!known.has(service)) {
        // The spec: an unknown service gets SERVICE_UNKNOWN and the call stays
        // open (the service might become known; Rivulet's never change).
        yield create(HealthCheckResponseSchema, { status: ServingStatus.SERVICE_UNKNOWN });
        await new Promise<void>((resolve) => {
          if (context.signal.aborted) resolve();
          else context.signal.addEventListener("abort", () => resolve(), { once: true });
        });
        return;
      }
      for await (const ready of readiness.watch(context.signal)) yield statusOf(ready);
    },
  };
}
