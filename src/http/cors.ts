import { cors } from "@connectrpc/connect";
import type { HttpRequest, HttpResponse } from "./mount.js";
import { writeHead } from "./write-head.js";

const allowedMethods = [...cors.allowedMethods, "OPTIONS"].join(", ");
const allowedHeaders = [...cors.allowedHeaders, "Authorization", "Last-Event-ID"].join(", ");
const exposedHeaders = cors.exposedHeaders.join(", ");

/**
 * CORS for every route, with connect-es's lists of the headers Connect, gRPC-Web
 * and SSE need. Only origins on the allow-list get CORS headers; others get
 * none, so browsers keep them same-origin. Answers preflights itself and then
 * returns true.
 */
export function applyCors(req: HttpRequest, res: HttpResponse, allowedOrigins: readonly string[]): boolean {
  const origin = req.headers.origin;
  if (typeof origin !== "string" || !allowedOrigins.includes(origin)) return false;
  res.setHeader("access-control-allow-origin", origin);
  res.setHeader("access-control-allow-credentials", "true");
  res.setHeader("vary", "Origin");
  if (req.method === "OPTIONS" && req.headers["access-control-request-method"] !== undefined) {
    writeHead(res, 204, {
      "access-control-allow-methods": allowedMethods,
      "access-control-allow-headers": allowedHeaders,
      "access-control-max-age": "7200",
    });
    res.end();
    return true;
  }
  res.setHeader("access-control-expose-headers", exposedHeaders);
  return false;
}
