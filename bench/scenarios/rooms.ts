import type { BenchOptions } from "../lib/bench-options.js";
import { measureFanOut } from "../lib/fan-out.js";
import type { Row } from "../lib/results.js";
import type { Topic } from "../targets/target.js";
import { runPerTarget } from "./run-per-target.js";

const roomSize = 10;
const payloadBytes = 64;

/**
 * Scenario (b): users in chat rooms of ten, each also reading a personal topic
 * (Rivulet: their own notifications). Publishes go round-robin over every room
 * and every user, so a room message makes ten deliveries and a personal one.
 */
export function runRooms(options: BenchOptions, log: (line: string) => void): Promise<Row[]> {
  const users = options.roomUsers;
  const rooms: Topic[] = Array.from({ length: Math.ceil(users / roomSize) }, (_, r) => ({ kind: "room", name: `room-${r}` }));
  const personal: Topic[] = Array.from({ length: users }, (_, u) => ({ kind: "user", name: `user-${u}` }));
  const subscribers = personal.map((topic, u) => ({ userId: topic.name, topics: [rooms[Math.floor(u / roomSize)]!, topic] }));
  const topics = [...rooms, ...personal];
  const fanOut = topics.map((topic, index) => (topic.kind === "user" ? 1 : Math.min(roomSize, users - index * roomSize)));
  return runPerTarget(
    "rooms",
    options.targets,
    [`${users} users in rooms of ${roomSize} + a personal topic each, ${payloadBytes} B`],
    (session) =>
      measureFanOut(session, {
        subscribers,
        topics,
        fanOut,
        payloadBytes,
        fixedDeliveriesPerSecond: options.fixedDeliveriesPerSecond / 4,
        rampFactor: options.rampFactor,
        // Small fan-outs make this scenario publish-bound early (see bench/README.md): one step fewer.
        rampSteps: Math.max(2, options.rampSteps - 1),
        timing: options.timing,
      }),
    log,
    { cpuProfileDirectory: options.cpuProfileDirectory },
  );
}
