import type { Broker } from "../broker/broker.js";

/** One response of a presence stream: the whole list first, then what changed. */
export interface PresenceChange {
  readonly members: string[];
  readonly joined: string[];
  readonly left: string[];
}

/**
 * A topic's presence as a stream (docs/semantics.md, "Presence"): first every
 * member, then who joined and who left since the previous change, user ids
 * sorted. Conflated by construction: while the consumer has not asked for the
 * next change, the broker's newer sets replace the pending one, and the
 * change yielded next is the difference between the last set delivered and
 * the latest, so a slow consumer gets the net change (a user who joined and
 * left in between appears in neither list) and never a stale one.
 *
 * A plain generator: every transport serves it (the bridges iterate any
 * server-streaming handler). It ends when `signal` aborts (the call ended).
 */
export async function* presenceChanges(broker: Broker, topic: string, signal: AbortSignal): AsyncGenerator<PresenceChange> {
  let latest: ReadonlySet<string> | undefined;
  let wake: (() => void) | undefined;
  const awaken = () => {
    const resume = wake;
    wake = undefined;
    resume?.();
  };
  const stop = broker.watchPresence(topic, (members) => {
    latest = members;
    awaken();
  });
  signal.addEventListener("abort", awaken, { once: true });
  try {
    let delivered: ReadonlySet<string> | undefined;
    while (!signal.aborted) {
      const current = latest;
      if (current === undefined || current === delivered) {
        await new Promise<void>((resolve) => (wake = resolve));
        continue;
      }
      const previous = delivered;
      delivered = current;
      if (previous === undefined) {
        yield { members: [...current].sort(), joined: [], left: [] };
        continue;
      }
      const joined = [...current].filter((user) => !previous.has(user)).sort();
      const left = [...previous].filter((user) => !current.has(user)).sort();
      // Back where the last response left it (joined and left again): nothing to say.
      if (joined.length > 0 || left.length > 0) yield { members: [], joined, left };
    }
  } finally {
    signal.removeEventListener("abort", awaken);
    stop();
  }
}
