/**
 * `npm run bench` (and `-- --quick`): runs the scenarios against Rivulet, the
 * bare baselines and the peers in one run, prints markdown tables and writes
 * JSON to bench/results/. See bench/README.md.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { parseBenchArgs, type BenchOptions, type ScenarioName } from "./lib/bench-options.js";
import { renderMarkdown } from "./lib/report.js";
import type { BenchResults, Row } from "./lib/results.js";
import { canPin, loadCore } from "./lib/spawn-process.js";
import { runBroadcast } from "./scenarios/broadcast.js";
import { runConnections } from "./scenarios/connections.js";
import { runIdle } from "./scenarios/idle.js";
import { runLlm } from "./scenarios/llm.js";
import { runRedis } from "./scenarios/redis.js";
import { runRooms } from "./scenarios/rooms.js";
import { runSseCompression } from "./scenarios/sse-compression.js";
import { runWebSocketCompression } from "./scenarios/ws-compression.js";

const scenarios: Record<ScenarioName, (options: BenchOptions, log: (line: string) => void) => Promise<Row[]>> = {
  broadcast: runBroadcast,
  rooms: runRooms,
  idle: runIdle,
  llm: runLlm,
  redis: runRedis,
  "sse-compression": runSseCompression,
  "ws-compression": runWebSocketCompression,
  connections: runConnections,
};

/** Runs the bench; returns the results (and writes them as JSON when `options.resultsDirectory` is set). */
export async function runBench(
  options: BenchOptions,
  log: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): Promise<{ results: BenchResults; file: string | undefined }> {
  const startedAt = new Date().toISOString();
  const machine = { cpus: cpus().length, model: cpus()[0]?.model ?? "unknown", node: process.versions.node, pinned: canPin(), loadAverage: loadavg() };
  const rows: Row[] = [];
  for (const name of options.scenarios) rows.push(...(await scenarios[name](options, log)));
  const results: BenchResults = { startedAt, finishedAt: new Date().toISOString(), quick: options.quick, machine, rows };
  let file: string | undefined;
  if (options.resultsDirectory) {
    mkdirSync(options.resultsDirectory, { recursive: true });
    file = join(options.resultsDirectory, `${startedAt.replace(/[:.]/g, "-")}${options.quick ? "-quick" : ""}.json`);
    writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  }
  return { results, file };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  let options: BenchOptions;
  try {
    options = parseBenchArgs(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(2);
  }
  // The orchestrator publishes: it belongs on the load generators' core, not the servers'.
  if (canPin()) spawnSync("taskset", ["-a", "-p", "-c", String(loadCore), String(process.pid)], { stdio: "ignore" });
  const started = Date.now();
  const log = (line: string) => process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}\n`);
  runBench(options, log).then(
    ({ results, file }) => {
      process.stdout.write(renderMarkdown(results));
      process.stderr.write(`bench finished in ${((Date.now() - started) / 1000).toFixed(0)} s${file ? `; JSON in ${file}` : ""}\n`);
      // The publishers' pooled HTTP/1.1 and HTTP/2 connections would keep the process alive for their idle timeouts.
      process.exit(0);
    },
    (error: unknown) => {
      process.stderr.write(`bench failed: ${error instanceof Error ? error.stack : String(error)}\n`);
      process.exit(1);
    },
  );
}
