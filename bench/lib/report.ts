import type { BenchResults, Row } from "./results.js";

const number = (value: number, digits = 0) => value.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
const ms = (value: number | undefined) => (value === undefined ? "—" : value < 10 ? number(value, 2) : number(value, 1));
const ratio = (value: number | undefined) => (value === undefined || !Number.isFinite(value) ? "—" : `${number(value, 2)}×`);

/** The baseline and peer rows a Rivulet row is compared with: same scenario, case and transport family (a family may have several peers). */
export function comparisonsOf(row: Row, rows: readonly Row[]): { baseline: Row | undefined; peers: Row[] } {
  const same = (r: Row) => r.scenario === row.scenario && r.case === row.case && r.family === row.family && !r.skipped;
  return row.role === "rivulet"
    ? { baseline: rows.find((r) => r.role === "baseline" && same(r)), peers: rows.filter((r) => r.role === "peer" && same(r)) }
    : { baseline: undefined, peers: [] };
}

/** A Rivulet/peer ratio and the peer's row label. */
export interface PeerRatio {
  readonly label: string;
  readonly ratio: number | undefined;
}

/**
 * Rivulet/baseline and Rivulet/peer for a row, on the scenario's headline figure:
 * ceiling deliveries/s (or, with `perCpu`, deliveries per server CPU-second, the
 * steadier figure on a shared machine); memory per connection for idle,
 * inverted so that above 1 always favours Rivulet. One ratio per peer, in row order.
 */
export function ratiosOf(row: Row, rows: readonly Row[], perCpu = false): { baseline: number | undefined; peers: PeerRatio[] } {
  const { baseline, peers } = comparisonsOf(row, rows);
  const figure = (r: Row | undefined) =>
    r?.idle ? r.idle.rssBytesPerConnection : perCpu ? r?.ceiling?.deliveriesPerCpuSecond : r?.ceiling?.deliveriesPerSecond;
  const of = (other: Row | undefined) => {
    const mine = figure(row);
    const theirs = figure(other);
    if (mine === undefined || theirs === undefined || mine <= 0 || theirs <= 0) return undefined;
    return row.idle ? theirs / mine : mine / theirs;
  };
  return { baseline: of(baseline), peers: peers.map((peer) => ({ label: peer.label, ratio: of(peer) })) };
}

/** The "× peer" cell: the ratio alone for one peer; each ratio with its peer's name when a family has several. */
function peerCell(peers: readonly PeerRatio[]): string {
  if (peers.length === 0) return "—";
  if (peers.length === 1) return ratio(peers[0]!.ratio);
  return peers.map((peer) => `${ratio(peer.ratio)} ${peer.label}`).join(", ");
}

function table(header: string[], lines: string[][]): string {
  return [`| ${header.join(" | ")} |`, `| ${header.map(() => "---").join(" | ")} |`, ...lines.map((l) => `| ${l.join(" | ")} |`)].join("\n");
}

function skippedLine(row: Row, columns: number): string[] {
  return [row.case, row.label, `skipped: ${row.skipped ?? ""}`.replace(/\|/g, "/"), ...Array.from({ length: columns - 3 }, () => "")];
}

/** The results as markdown: one table per scenario, ratios per Rivulet row. */
export function renderMarkdown(results: BenchResults): string {
  const { rows } = results;
  const sections: string[] = [
    `Bench ${results.startedAt}${results.quick ? " (--quick)" : ""}: ${results.machine.cpus} × ${results.machine.model}, Node ${results.machine.node}, ` +
      `${results.machine.pinned ? "servers pinned to core 0, load on core 1" : "NOT pinned (no taskset or one core)"}, load average ${results.machine.loadAverage.map((l) => l.toFixed(2)).join(" ")} at the start.`,
  ];
  for (const scenario of ["broadcast", "rooms"] as const) {
    const mine = rows.filter((r) => r.scenario === scenario);
    if (mine.length === 0) continue;
    const header = [
      "case",
      "target",
      "ceiling deliveries/s",
      "per server CPU-s",
      "p50 ms",
      "p99 ms",
      "p999 ms",
      "p99 ms at fixed rate",
      "loop delay p99 ms",
      "RSS MiB",
      "load gen CPU",
      "× baseline",
      "× peer",
      "× baseline per CPU-s",
      "× peer per CPU-s",
      "notes",
    ];
    sections.push(
      `### ${scenario === "broadcast" ? "(a) Broadcast" : "(b) Chat rooms of 10 + a personal topic"}\n\nCeiling: the best ramp step; latency at half the ceiling; fixed rate ${rows.find((r) => r.scenario === scenario && r.fixed)?.fixed?.offeredPerSecond.toFixed(0) ?? "—"} deliveries/s for every target.\n\n` +
        table(
          header,
          mine.map((row) => {
            if (row.skipped || !row.ceiling || !row.half || !row.fixed) return skippedLine(row, header.length);
            const ratios = ratiosOf(row, rows);
            const perCpu = ratiosOf(row, rows, true);
            return [
              row.case,
              row.label,
              number(row.ceiling.deliveriesPerSecond),
              number(row.ceiling.deliveriesPerCpuSecond),
              ms(row.half.latencyMs.p50),
              ms(row.half.latencyMs.p99),
              ms(row.half.latencyMs.p999),
              ms(row.fixed.latencyMs.p99),
              ms(row.ceiling.eventLoopDelayP99Ms),
              number(row.ceiling.rssBytes / 2 ** 20, 0),
              `${number((100 * row.ceiling.loadCpuSeconds) / row.ceiling.elapsedSeconds)} %`,
              ratio(ratios.baseline),
              peerCell(ratios.peers),
              ratio(perCpu.baseline),
              peerCell(perCpu.peers),
              (row.notes ?? []).join("; "),
            ];
          }),
        ),
    );
  }
  const idle = rows.filter((r) => r.scenario === "idle");
  if (idle.length > 0) {
    const header = ["case", "target", "connections", "RSS KiB per connection", "heap KiB per connection", "server RSS MiB", "× baseline", "× peer"];
    sections.push(
      `### (c) Idle memory per connection\n\nRatios: baseline's (or peer's) memory divided by Rivulet's, so above 1× means Rivulet is leaner.\n\n` +
        table(
          header,
          idle.map((row) => {
            if (row.skipped || !row.idle) return skippedLine(row, header.length);
            const ratios = ratiosOf(row, rows);
            return [
              row.case,
              row.label,
              number(row.idle.connections),
              number(row.idle.rssBytesPerConnection / 1024, 1),
              number(row.idle.heapBytesPerConnection / 1024, 1),
              number(row.idle.rssBytes / 2 ** 20),
              ratio(ratios.baseline),
              peerCell(ratios.peers),
            ];
          }),
        ),
    );
  }
  const llm = rows.filter((r) => r.scenario === "llm");
  if (llm.length > 0) {
    const header = [
      "case",
      "target",
      "completions (failed)",
      "tokens",
      "first token p50 ms",
      "first token p99 ms",
      "inter-token p50 ms",
      "inter-token p99 ms",
      "inter-token p999 ms",
      "server CPU s",
      "loop delay p99 ms",
    ];
    sections.push(
      `### (d) LLM token streams\n\n` +
        table(
          header,
          llm.map((row) => {
            if (row.skipped || !row.llm) return skippedLine(row, header.length);
            const l = row.llm;
            return [
              row.case,
              row.label,
              `${l.completions} (${l.failed})`,
              number(l.tokens),
              ms(l.timeToFirstTokenMs.p50),
              ms(l.timeToFirstTokenMs.p99),
              ms(l.interTokenMs.p50),
              ms(l.interTokenMs.p99),
              ms(l.interTokenMs.p999),
              l.serverCpuSeconds === undefined ? "—" : number(l.serverCpuSeconds, 2),
              ms(l.eventLoopDelayP99Ms),
            ];
          }),
        ),
    );
  }
  const redis = rows.filter((r) => r.scenario === "redis");
  if (redis.length > 0) {
    // Each two-instance row against the one-instance row of the same server (`rivulet-redis` against `rivulet-memory`).
    const reference = (row: Row) => redis.find((r) => r.target === row.target.replace(/-redis$/, "-memory") && r.fixed);
    const header = ["case", "target", "delivered/expected", "p50 ms", "p99 ms", "p999 ms", "added p99 ms"];
    sections.push(
      `### (e) The Redis hop\n\n` +
        table(
          header,
          redis.map((row) => {
            if (row.skipped || !row.fixed) return skippedLine(row, header.length);
            const memory = reference(row);
            const added = memory?.fixed && row !== memory ? ms(row.fixed.latencyMs.p99 - memory.fixed.latencyMs.p99) : "—";
            return [
              row.case,
              row.label,
              `${row.fixed.delivered}/${row.fixed.expected}`,
              ms(row.fixed.latencyMs.p50),
              ms(row.fixed.latencyMs.p99),
              ms(row.fixed.latencyMs.p999),
              added,
            ];
          }),
        ),
    );
  }
  const sseCompression = rows.filter((r) => r.scenario === "sse-compression");
  if (sseCompression.length > 0) {
    const header = ["case", "target", "deliveries", "wire bytes per delivery", "server CPU µs per delivery", "RSS KiB per idle connection"];
    sections.push(
      `### (f) SSE gzip\n\n` +
        table(
          header,
          sseCompression.map((row) => {
            if (row.skipped || !row.compression) return skippedLine(row, header.length);
            const c = row.compression;
            return [
              row.case,
              row.label,
              number(c.deliveries),
              number(c.wireBytesPerDelivery, 1),
              number(c.serverCpuMicrosPerDelivery, 1),
              number(c.rssBytesPerConnection / 1024, 1),
            ];
          }),
        ),
    );
  }
  const compression = rows.filter((r) => r.scenario === "ws-compression");
  if (compression.length > 0) {
    const header = ["case", "target", "delivered/expected", "wire bytes per delivery", "server CPU µs per delivery", "p50 ms", "p99 ms", "load gen CPU"];
    sections.push(
      `### (g) WebSocket permessage-deflate\n\n` +
        table(
          header,
          compression.map((row) => {
            if (row.skipped || !row.fixed) return skippedLine(row, header.length);
            const f = row.fixed;
            const per = (value: number) => (f.delivered > 0 ? value / f.delivered : 0);
            return [
              row.case,
              row.label,
              `${f.delivered}/${f.expected}`,
              number(per(f.bytesReceived)),
              number(per(f.serverCpuSeconds) * 1e6, 2),
              ms(f.latencyMs.p50),
              ms(f.latencyMs.p99),
              `${number((100 * f.loadCpuSeconds) / f.elapsedSeconds)} %`,
            ];
          }),
        ),
    );
  }
  const connections = rows.filter((r) => r.scenario === "connections");
  if (connections.length > 0) sections.push(connectionsSection(connections));
  return `${sections.join("\n\n")}\n`;
}

/** The connections scenario's table, and a line per target that held fewer than asked: where it stopped. */
function connectionsSection(rows: readonly Row[]): string {
  const header = [
    "case",
    "target",
    "connected",
    "load processes × source addresses",
    "listen backlog (overflows while connecting)",
    "time to connect s",
    "RSS KiB per connection",
    "server RSS MiB (processes)",
    "idle CPU-s (window)",
    "idle CPU % of a core",
    "heartbeat",
    "fan-out: last delivery ms",
    "fan-out p50 ms",
  ];
  const lines = rows.map((row) => {
    const c = row.connections;
    if (row.skipped || !c) return skippedLine(row, header.length);
    const fanOut =
      c.fanOut.length > 0 ? c.fanOut.map((m) => `${ms(m.lastDeliveryMs)}${m.delivered < m.expected ? ` (${m.delivered}/${m.expected})` : ""}`).join(", ") : "—";
    return [
      row.case,
      row.label,
      `${number(c.connected)} of ${number(c.requested)}${c.released > 0 ? ` (${number(c.released)} closed to publish)` : ""}`,
      `${c.loadProcesses} × ${c.sourceAddresses}`,
      `${c.listenBacklog} (${Number.isNaN(c.listenOverflows) ? "—" : number(c.listenOverflows)})`,
      number(c.connectSeconds, 1),
      c.connected > 0 ? `${number(c.rssBytesPerConnection / 1024, 1)} (${c.rssMethod})` : "—",
      `${number(c.rssBytes / 2 ** 20)} (${c.serverProcesses})`,
      Number.isFinite(c.idleCpuSeconds) ? `${number(c.idleCpuSeconds, 2)} (${number(c.idleWindowSeconds)} s)` : "—",
      Number.isFinite(c.idleCpuSeconds) ? `${number((100 * c.idleCpuSeconds) / c.idleWindowSeconds, 1)} %` : "—",
      c.heartbeat,
      fanOut,
      c.fanOut.length > 0 ? ms(c.fanOut[Math.floor(c.fanOut.length / 2)]!.p50Ms) : "—",
    ];
  });
  const limits = rows
    .filter((row) => row.connections?.limit)
    .map((row) => `- ${row.label}: ${row.connections!.limit!.replace(/\|/g, "/")}`)
    .join("\n");
  return (
    `### Connections: idle subscribers of one room\n\n` +
    `RSS per connection: after a full GC for one process; summed over the server's processes from /proc, without a GC, for \`--workers\`. ` +
    `Idle CPU: the server's user + system CPU over the idle window, all its processes. Fan-out: one message published to every connection, ` +
    `from the publish call to its last delivery, one figure per message.` +
    (rows.find((row) => row.connections)?.connections?.machineLimits
      ? ` Limits of this machine: ${rows.find((row) => row.connections)!.connections!.machineLimits}.`
      : "") +
    `\n\n` +
    table(header, lines) +
    (limits ? `\n\nWhere it stopped:\n\n${limits}` : "")
  );
}
