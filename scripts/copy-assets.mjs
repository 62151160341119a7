// Copies the files modules under src/ read at run time (the Redis broker's
// Lua scripts) next to their compiled JavaScript in dist/, which tsc does not:
// `npm run build` runs it after tsc, so `npm start` finds them.
import { copyFileSync, mkdirSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const assets = readdirSync(join(root, "src"), { recursive: true, encoding: "utf8" }).filter((path) => path.endsWith(".lua"));
for (const path of assets) {
  const target = join(root, "dist", "src", path);
  mkdirSync(dirname(target), { recursive: true });
  copyFileSync(join(root, "src", path), target);
}
