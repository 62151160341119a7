/**
 * What an idle connection keeps on the heap: compares two V8 heap snapshots
 * (taken by the probe with `BENCH_HEAP_SNAPSHOTS`, before and after the idle
 * scenario opens its connections) and prints, per kind of object, how many
 * more there are and how many bytes they add per connection.
 *
 *   npx tsx bench/heap-census.ts before.heapsnapshot after.heapsnapshot 2000
 *
 * Self sizes only (no retained sizes): an idle connection's cost is the sum of
 * the rows, and a row names what to remove. Written by hand because the
 * snapshot format is a flat table that takes a page to read and no maintained
 * package reads it outside DevTools.
 */
import { readFileSync } from "node:fs";

interface Snapshot {
  readonly snapshot: { readonly meta: { readonly node_fields: string[]; readonly node_types: [string[], ...unknown[]] } };
  readonly nodes: number[];
  readonly strings: string[];
}

interface Census {
  readonly count: Map<string, number>;
  readonly bytes: Map<string, number>;
}

function census(file: string): Census {
  const data = JSON.parse(readFileSync(file, "utf8")) as Snapshot;
  const fields = data.snapshot.meta.node_fields;
  const width = fields.length;
  const typeAt = fields.indexOf("type");
  const nameAt = fields.indexOf("name");
  const sizeAt = fields.indexOf("self_size");
  const typeNames = data.snapshot.meta.node_types[0];
  const count = new Map<string, number>();
  const bytes = new Map<string, number>();
  for (let i = 0; i < data.nodes.length; i += width) {
    const type = typeNames[data.nodes[i + typeAt] ?? 0] ?? "?";
    const name = data.strings[data.nodes[i + nameAt] ?? 0] ?? "?";
    // Strings and code are grouped by type: their names are their contents.
    const key = type === "object" || type === "closure" || type === "native" ? `${type} ${name}` : type;
    count.set(key, (count.get(key) ?? 0) + 1);
    bytes.set(key, (bytes.get(key) ?? 0) + (data.nodes[i + sizeAt] ?? 0));
  }
  return { count, bytes };
}

const [beforeFile, afterFile, connectionsText, limitText] = process.argv.slice(2);
const connections = Number(connectionsText);
if (!beforeFile || !afterFile || !Number.isInteger(connections) || connections < 1) {
  console.error("usage: npx tsx bench/heap-census.ts <before.heapsnapshot> <after.heapsnapshot> <connections> [rows]");
  process.exit(2);
}
const before = census(beforeFile);
const after = census(afterFile);
const rows = [...after.bytes.keys()]
  .map((key) => ({
    key,
    perConnection: (after.count.get(key) ?? 0) / connections - (before.count.get(key) ?? 0) / connections,
    bytes: ((after.bytes.get(key) ?? 0) - (before.bytes.get(key) ?? 0)) / connections,
  }))
  .sort((a, b) => b.bytes - a.bytes);
const total = rows.reduce((sum, row) => sum + row.bytes, 0);
console.log(`heap per connection: ${total.toFixed(0)} bytes (${(total / 1024).toFixed(2)} KiB), self sizes\n`);
console.log("| bytes per connection | objects per connection | kind |\n| --- | --- | --- |");
for (const row of rows.slice(0, Number(limitText ?? 40))) {
  console.log(`| ${row.bytes.toFixed(0)} | ${row.perConnection.toFixed(2)} | ${row.key} |`);
}
