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
  // HTTP/1.1 keeps the head it sent as `_header` for the response's life, built by
  // concatenation: a rope of two dozen string pieces (about 770 bytes for an SSE
  // stream's head). Reading a character flattens it in place, so a long-lived
  // stream keeps one flat string (about 250 bytes) instead.
  if ("_header" in res && typeof res._header === "string") res._header.charCodeAt(0);
}

/** A short plain-text (or `contentType`) answer: health checks, the dev token, refusals before any stream. */
export function sendText(res: HttpResponse, status: number, text: string, contentType = "text/plain; charset=utf-8", noStore = false): void {
  writeHead(res, status, { "content-type": contentType, ...(noStore ? { "cache-control": "no-store" } : {}) });
  res.end(text);
}
