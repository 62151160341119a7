import type { Registry } from "prom-client";
import type { Mount } from "./mount.js";
import { sendText } from "./write-head.js";

/** GET /healthz (the process runs), /readyz (the broker answers) and /metrics (Prometheus: a registry, or every worker's, src/cluster-metrics.ts). */
export function createHealthMount(ready: () => Promise<boolean>, registry: Pick<Registry, "metrics" | "contentType">): Mount {
  return {
    handle(req, res, url) {
      if (req.method !== "GET" && req.method !== "HEAD") return false;
      switch (url.pathname) {
        case "/healthz":
          sendText(res, 200, "ok\n");
          return true;
        case "/readyz":
          void ready().then(
            (ready) => sendText(res, ready ? 200 : 503, ready ? "ready\n" : "broker unreachable\n"),
            () => sendText(res, 503, "broker unreachable\n"),
          );
          return true;
        case "/metrics":
          void registry.metrics().then((text) => sendText(res, 200, text, registry.contentType));
          return true;
        default:
          return false;
      }
    },
  };
}
