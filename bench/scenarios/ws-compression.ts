import type { BenchOptions } from "../lib/bench-options.js";
import { runStep } from "../lib/measure-step.js";
import type { Row } from "../lib/results.js";
import { SkipError, startTargetSession, type SessionOptions } from "../lib/target-session.js";
import { rivuletWebSocket, rivuletWebSocketDeflate } from "../targets/rivulet-websocket.js";
import type { Target, Topic } from "../targets/target.js";

/**
 * Chat-like text for the payloads: words drawn with a fixed seed from a small
 * vocabulary, so a message compresses about as English text does (a payload
 * of one repeated letter would make compression look free).
 */
const filler = (() => {
  const words =
    "the a to of and in is that for it on you with was as are be this have not at or from by but we they can an all will one about more there when up out so what if time new like just".split(
      " ",
    );
  let seed = 12345;
  const out: string[] = [];
  for (let i = 0; i < 1000; i++) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    out.push(words[seed % words.length]!);
  }
  return `${out.join(" ")} `;
})();

/**
 * Scenario (g): WebSocket permessage-deflate, off against on. The same
 * subscribers of one topic and the same publish rate of 1 KiB text messages,
 * at a fixed rate far below the ceiling: bytes on the wire per delivery (what
 * the subscribers' sockets received, framing included) and the server's CPU
 * per delivery. With compression on, each message is deflated once for all
 * sockets (server_no_context_takeover), so the CPU it adds is per message, not
 * per delivery; the readers inflate every copy (load generator CPU).
 */
export async function runWebSocketCompression(options: BenchOptions, log: (line: string) => void): Promise<Row[]> {
  const topic: Topic = { kind: "room", name: "ws-compression" };
  const subscribers = Array.from({ length: options.compressionSubscribers }, (_, i) => ({ userId: `sub-${i}`, topics: [topic] }));
  const payloadBytes = 1024;
  const caseName = `${options.compressionSubscribers} subscribers, ${options.compressionPublishRate} publishes/s, ${payloadBytes} B text`;
  const variants: { target: Target; label: string; session: SessionOptions }[] = [
    { target: rivuletWebSocket, label: "Rivulet WebSocket, --ws-compression off", session: {} },
    { target: rivuletWebSocketDeflate, label: "Rivulet WebSocket, --ws-compression on", session: { serverArgs: ["--ws-compression", "on"] } },
  ];
  const rows: Row[] = [];
  for (const variant of variants) {
    const head = {
      scenario: "ws-compression",
      case: caseName,
      target: variant.target.name,
      label: variant.label,
      role: "rivulet",
      family: "websocket",
    } as const;
    log(`ws-compression · ${caseName} · ${variant.label}`);
    let session;
    try {
      session = await startTargetSession(variant.target, { ...variant.session, cpuProfileDirectory: options.cpuProfileDirectory });
      await session.open(subscribers);
      await session.warmUp([topic], 64);
      const fixed = await runStep(session, {
        topics: [topic],
        fanOut: [subscribers.length],
        publishRate: options.compressionPublishRate,
        payloadBytes,
        filler,
        timing: { ...options.timing, durationMs: 4 * options.timing.durationMs },
      });
      rows.push({ ...head, fixed });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      rows.push({ ...head, skipped: error instanceof SkipError ? message : `failed: ${message}` });
    } finally {
      await session?.stop();
    }
  }
  return rows;
}
