import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, posix, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

/**
 * The layering of src/ (docs/development.md, "Layout and layers"): a file may
 * import from its own folder and from layers below its own, never from a layer
 * above or beside it. A folder's subfolders (bridge/sse, bridge/websocket,
 * broker/redis) may import their parent folder's files, but not one another,
 * and a parent folder's files do not import its subfolders.
 * The client (src/client) imports nothing of the server: generated code and
 * src/wire only. The command line (src/cli) is the one place that uses both.
 */
const layers: readonly (readonly string[])[] = [
  ["gen"],
  ["src/wire"],
  ["src/config.ts", "src/log.ts", "src/metrics.ts", "src/cluster-metrics.ts"],
  ["src/broker", "src/call"],
  ["src/http"],
  ["src/auth"],
  ["src/limits"],
  ["src/services", "src/bridge", "src/grpc"],
  ["src/server.ts", "src/workers.ts"],
  ["src/main.ts"],
  ["src/cli"],
];
const clientMayImport: readonly string[] = ["gen", "src/wire"];

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");

/** The unit a path belongs to: a top-level file of src/ or a folder (gen/, src/<folder>). */
function unitOf(path: string): string {
  if (path.startsWith("gen/")) return "gen";
  const parts = path.split("/");
  return parts.length === 2 ? path : `${parts[0]}/${parts[1]}`;
}

function layerOf(unit: string): number {
  return layers.findIndex((layer) => layer.includes(unit));
}

function sourceFiles(dir: string): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true }).flatMap((entry) => {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith(".ts") ? [path] : [];
  });
}

/** Relative imports of a file (static, type-only and dynamic), as repository paths. */
function importsOf(file: string): string[] {
  const text = readFileSync(join(root, file), "utf8");
  const specifiers = [...text.matchAll(/(?:from|import)\s*\(?\s*["'](\.{1,2}\/[^"']+)["']/g)].map((m) => m[1]!);
  return specifiers.map((spec) => posix.normalize(posix.join(posix.dirname(file), spec)).replace(/\.js$/, ".ts"));
}

/** Every import that breaks a rule, as "from -> to: why". */
export function violations(): string[] {
  const found: string[] = [];
  for (const file of sourceFiles("src")) {
    const from = unitOf(file);
    for (const target of importsOf(file)) {
      const to = unitOf(target);
      if (from === "src/client") {
        if (to !== from && !clientMayImport.includes(to)) found.push(`${file} -> ${target}: the client imports only gen/ and src/wire/`);
        continue;
      }
      if (to === "src/client") {
        // The command line is a client of the server it also starts; nothing else of the server uses the client.
        if (from !== "src/cli") found.push(`${file} -> ${target}: the server imports nothing of the client (only src/cli may use it)`);
        continue;
      }
      if (from === to) {
        const fromSub = dirname(relative(from, file));
        const toSub = dirname(relative(to, target));
        const fromTop = fromSub.split("/")[0]!;
        const toTop = toSub.split("/")[0]!;
        if (fromTop !== toTop && toTop !== ".") found.push(`${file} -> ${target}: sibling subfolders of ${from} do not import each other`);
        else if (fromTop === "." && toTop !== ".") found.push(`${file} -> ${target}: ${from}'s own files do not import its subfolders`);
        continue;
      }
      const fromLayer = layerOf(from);
      const toLayer = layerOf(to);
      if (fromLayer < 0) found.push(`${file}: ${from} has no layer; add it to the table in this test and docs/development.md`);
      else if (toLayer < 0) found.push(`${file} -> ${target}: ${to} has no layer`);
      else if (toLayer >= fromLayer)
        found.push(`${file} -> ${target}: ${from} (layer ${fromLayer}) may import only lower layers, not ${to} (layer ${toLayer})`);
    }
  }
  return found;
}

describe("import direction", () => {
  it("every import in src/ runs downward, and the client imports only gen/ and src/wire/", () => {
    expect(violations()).toEqual([]);
  });

  it("knows every folder of src/", () => {
    const units = new Set(sourceFiles("src").map(unitOf));
    const unknown = [...units].filter((unit) => unit !== "src/client" && layerOf(unit) < 0);
    expect(unknown).toEqual([]);
  });
});
