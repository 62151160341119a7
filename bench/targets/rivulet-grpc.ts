import { rivuletH2Target } from "./rivulet-h2-target.js";

/** Rivulet over gRPC on h2c. */
export const rivuletGrpc = rivuletH2Target("rivulet-grpc", "Rivulet gRPC (h2c)", [
  ["content-type", "application/grpc"],
  ["te", "trailers"],
]);
