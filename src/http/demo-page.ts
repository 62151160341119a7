import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import type { Mount } from "./mount.js";
import { sendText, writeHead } from "./write-head.js";

/** The demo's files: the page and the bundle `npm run build` makes (scripts/build-web.mjs). */
const assets: Readonly<Record<string, { readonly file: string; readonly type: string }>> = {
  "/": { file: "index.html", type: "text/html; charset=utf-8" },
  "/app.js": { file: "dist/app.js", type: "text/javascript; charset=utf-8" },
  "/app.js.map": { file: "dist/app.js.map", type: "application/json; charset=utf-8" },
};

/**
 * GET /: the demo app (web/index.html and its bundle, /app.js); GET /favicon.ico:
 * 204, so browsers stop asking and logs stay free of 404s.
 *
 * Files are read per request, so a rebuilt bundle shows on reload without a
 * restart. They are served `no-cache` with an ETag: a browser revalidates
 * each load (one 304) and never runs a page with a stale bundle, which a
 * max-age on an unversioned /app.js would allow.
 */
export function createDemoPageMount(): Mount {
  // Runs from the sources (tests, tsx) or compiled as dist/src/http/demo-page.js (npm start).
  const webDir = new URL(import.meta.url.includes("/dist/src/") ? "../../../web/" : "../../web/", import.meta.url);
  return {
    handle(req, res, url) {
      if (req.method !== "GET" && req.method !== "HEAD") return false;
      if (url.pathname === "/favicon.ico") {
        // No icon to serve: an empty answer browsers may cache for a day.
        writeHead(res, 204, { "cache-control": "public, max-age=86400" });
        res.end();
        return true;
      }
      const asset = assets[url.pathname];
      if (!asset) return false;
      void readFile(new URL(asset.file, webDir)).then(
        (body) => {
          const etag = `"${createHash("sha256").update(body).digest("base64url").slice(0, 27)}"`;
          const headers = { "content-type": asset.type, "cache-control": "no-cache", etag };
          if (req.headers["if-none-match"] === etag) {
            writeHead(res, 304, headers);
            res.end();
            return;
          }
          writeHead(res, 200, { ...headers, "content-length": body.length });
          if (req.method === "HEAD") res.end();
          else res.end(body);
        },
        () => sendText(res, 404, asset.file.startsWith("dist/") ? "demo bundle missing: run npm run build\n" : "demo page missing\n"),
      );
      return true;
    },
  };
}
