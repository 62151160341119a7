import { readFile } from "node:fs/promises";
import type { Mount } from "./mount.js";
import { sendText, writeHead } from "./write-head.js";

/** GET /: the demo page; GET /favicon.ico: 204, so browsers stop asking and logs stay free of 404s. */
export function createDemoPageMount(): Mount {
  // Runs from the sources (tests, tsx) or compiled as dist/src/http/demo-page.js (npm start).
  const page = readFile(new URL(import.meta.url.includes("/dist/src/") ? "../../../web/index.html" : "../../web/index.html", import.meta.url));
  return {
    handle(req, res, url) {
      if (url.pathname === "/favicon.ico" && (req.method === "GET" || req.method === "HEAD")) {
        // No icon to serve: an empty answer browsers may cache for a day.
        writeHead(res, 204, { "cache-control": "public, max-age=86400" });
        res.end();
        return true;
      }
      if (url.pathname !== "/" || req.method !== "GET") return false;
      void page.then(
        (html) => {
          writeHead(res, 200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-cache" });
          res.end(html);
        },
        () => sendText(res, 404, "demo page missing\n"),
      );
      return true;
    },
  };
}
