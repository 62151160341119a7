import { rivuletH2Target } from "./rivulet-h2-target.js";

/** Rivulet over the Connect protocol on h2c. */
export const rivuletConnect = rivuletH2Target("rivulet-connect", "Rivulet Connect (h2c)", [
  ["content-type", "application/connect+proto"],
  ["connect-protocol-version", "1"],
]);
