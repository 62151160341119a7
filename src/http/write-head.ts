import type { OutgoingHttpHeaders } from "node:http";
import type { HttpResponse } from "./mount.js";

/** The `writeHead` overload HTTP/1.1 and HTTP/2 compatibility responses share. */
interface HeadWriter {
  writeHead(statusCode: number, headers?: OutgoingHttpHeaders): unknown;
}

/**
 * Sends a response's status and headers on HTTP/1.1 or HTTP/2. Since
 * @types/node 22 the two response classes declare `writeHead` overloads that
 * TypeScript cannot call through their union, so callers go through the one
 * overload both implement.
 */
export function writeHead(res: HttpResponse, statusCode: number, headers: OutgoingHttpHeaders = {}): void {
  const writer: HeadWriter = res;
  writer.writeHead(statusCode, headers);
}

/** A short plain-text (or `contentType`) answer: health checks, the dev token, refusals before any stream. */
export function sendText(res: HttpResponse, status: number, text: string, contentType = "text/plain; charset=utf-8", noStore = false): void {
  writeHead(res, status, { "content-type": contentType, ...(noStore ? { "cache-control": "no-store" } : {}) });
  res.end(text);
}
