// Bundles the demo app (web/src/main.ts and what it imports: the client, the
// generated descriptors) into web/dist/app.js for GET /app.js. `npm run build`
// runs it, and so does test/global-setup.ts, so the demo's browser tests load
// the code of the commit under test.
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
await build({
  entryPoints: [join(root, "web", "src", "main.ts")],
  outfile: join(root, "web", "dist", "app.js"),
  bundle: true,
  format: "esm",
  platform: "browser",
  // Current evergreen browsers: AbortSignal.any, structuredClone, top-level await.
  target: ["chrome120", "firefox121", "safari17"],
  sourcemap: "linked",
  minify: true,
  logLevel: "warning",
});
