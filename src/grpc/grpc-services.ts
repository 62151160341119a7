import type { DescService } from "@bufbuild/protobuf";
import { Health } from "../../gen/grpc/health/v1/health_pb.js";
import { ServerReflection } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import { ServerReflection as ServerReflectionV1alpha } from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import type { ServiceRegistration } from "../call/method-registry.js";
import { createHealthService } from "./health.js";
import { createReadinessWatch } from "./readiness-watch.js";
import { createReflectionIndex } from "./reflection-index.js";
import { createReflectionService, createReflectionServiceV1alpha } from "./reflection.js";

/**
 * How often Health/Watch asks for readiness while anyone watches: a Redis
 * outage shows within about this long (and a PING a second is nothing).
 */
const readinessPollMs = 1000;

/**
 * Most Health/Watch calls open at once, server-wide: they carry no
 * credentials, so no per-user limit counts them. A probe holds one or two.
 */
export const maxHealthWatches = 1000;

/** gRPC's standard services, ready to mount beside Rivulet's own. */
export interface GrpcServices {
  /** Health, and reflection v1 and v1alpha. */
  readonly registrations: readonly ServiceRegistration[];
  /**
   * Their full names. They ask for no credentials: Kubernetes gRPC probes,
   * grpc-health-probe and grpcurl send none, and they reveal only the
   * schema and whether the broker answers.
   */
  readonly publicServiceNames: ReadonlySet<string>;
}

/**
 * Health for the server (`""`) and each of `served`, following `ready`
 * (the broker's readiness, as GET /readyz); reflection over `served` and
 * these services themselves, so tools list everything that answers.
 */
export function createGrpcServices(served: readonly DescService[], ready: () => Promise<boolean>): GrpcServices {
  const own = [Health, ServerReflection, ServerReflectionV1alpha];
  const index = createReflectionIndex([...served, ...own]);
  const health = createHealthService(
    served.map((service) => service.typeName),
    createReadinessWatch(ready, readinessPollMs),
    maxHealthWatches,
  );
  return {
    registrations: [
      { service: Health, impl: health },
      { service: ServerReflection, impl: createReflectionService(index) },
      { service: ServerReflectionV1alpha, impl: createReflectionServiceV1alpha(index) },
    ],
    publicServiceNames: new Set(own.map((service) => service.typeName)),
  };
}
