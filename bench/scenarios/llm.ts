import type { LlmReport } from "../load/load-protocol.js";
import type { BenchOptions } from "../lib/bench-options.js";
import { createHistogram } from "../lib/histogram.js";
import type { LlmResult, Row } from "../lib/results.js";
import { benchSecret } from "../lib/rivulet-server.js";
import { sourceAddresses } from "../lib/source-addresses.js";
import { loadCore, spawnBenchProcess } from "../lib/spawn-process.js";
import { SkipError, startTargetSession } from "../lib/target-session.js";
import { rivuletConnect } from "../targets/rivulet-connect.js";

/**
 * Untimed rounds of the same completions (20 tokens each) before the timed one,
 * on both sides, so that the numbers are those of processes whose hot paths V8
 * has optimized, as in a server that has been up for a while. The load
 * generator's one completion per connection was far from enough: 100
 * completions measured in cold processes took about twice the server CPU per
 * token and 50 ms more to their first token than after these rounds, the fifth
 * of which still made a difference.
 */
const warmUpRounds = 5;

function toResult(report: LlmReport, server?: { cpuSeconds: number; eventLoopDelayP99Ms: number }): LlmResult {
  const ttft = createHistogram(report.timeToFirstToken);
  const gaps = createHistogram(report.interToken);
  return {
    completions: report.completed,
    failed: report.failed,
    tokens: report.tokens,
    timeToFirstTokenMs: { p50: ttft.percentile(50) / 1000, p99: ttft.percentile(99) / 1000 },
    interTokenMs: { p50: gaps.percentile(50) / 1000, p99: gaps.percentile(99) / 1000, p999: gaps.percentile(99.9) / 1000 },
    serverCpuSeconds: server?.cpuSeconds,
    eventLoopDelayP99Ms: server?.eventLoopDelayP99Ms,
  };
}

/**
 * Scenario (d): concurrent LLM-style token streams. Rivulet's ChatService.Complete
 * (embedded generator at --token-interval) over Connect h2c, against the same
 * number of generations from the embedded generator called directly: the
 * difference is what Rivulet adds to time to first token and to token gaps.
 */
export async function runLlm(options: BenchOptions, log: (line: string) => void): Promise<Row[]> {
  const caseName = `${options.llmCompletions} concurrent completions, a token every ${options.llmTokenIntervalMs} ms`;
  const rows: Row[] = [];
  const request = {
    type: "llm",
    port: 0,
    secret: benchSecret,
    completions: options.llmCompletions,
    tokenIntervalMs: options.llmTokenIntervalMs,
    sourceAddresses: sourceAddresses(),
  } as const;
  log(`llm · ${caseName} · embedded generator, called directly`);
  const direct = spawnBenchProcess({ script: "bench/load/load-worker.ts", core: loadCore });
  try {
    for (let round = 0; round < warmUpRounds; round++) await direct.ask<LlmReport>({ ...request, mode: "direct", warmUp: true }, "llm-done");
    const report = await direct.ask<LlmReport>({ ...request, mode: "direct" }, "llm-done");
    rows.push({
      scenario: "llm",
      case: caseName,
      target: "generator",
      label: "generator called directly",
      role: "baseline",
      family: "http2",
      llm: toResult(report),
    });
  } finally {
    await direct.stop();
  }
  const head = {
    scenario: "llm",
    case: caseName,
    target: rivuletConnect.name,
    label: rivuletConnect.label,
    role: rivuletConnect.role,
    family: rivuletConnect.family,
  } as const;
  log(`llm · ${caseName} · ${rivuletConnect.label}`);
  let session;
  try {
    session = await startTargetSession(rivuletConnect, {
      serverArgs: ["--token-interval", `${options.llmTokenIntervalMs}ms`],
      cpuProfileDirectory: options.cpuProfileDirectory,
    });
    const port = await session.server.ports;
    for (let round = 0; round < warmUpRounds; round++)
      await session.load.ask<LlmReport>({ ...request, port: port.port, mode: "rivulet", warmUp: true }, "llm-done");
    await session.resetProbe();
    const report = await session.load.ask<LlmReport>({ ...request, port: port.port, mode: "rivulet" }, "llm-done");
    const stats = await session.probe();
    rows.push({ ...head, llm: toResult(report, stats), notes: report.firstError ? [`first error: ${report.firstError}`] : [] });
  } catch (error) {
    rows.push({ ...head, skipped: error instanceof SkipError ? error.message : `failed: ${error instanceof Error ? error.message : String(error)}` });
  } finally {
    await session?.stop();
  }
  return rows;
}
