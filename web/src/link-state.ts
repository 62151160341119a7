/** What the page says about its connection to the server. */
export type LinkState =
  | { readonly kind: "connecting" }
  | { readonly kind: "connected" }
  /** `at`: when the next attempt starts (epoch ms), when the client says; `reason`: why the last one ended. */
  | { readonly kind: "reconnecting"; readonly at?: number; readonly reason?: string }
  | { readonly kind: "offline"; readonly reason: string };

/**
 * The state as the page shows it, e.g. "reconnecting in 1.4 s (the server
 * closed the stream)", with the writes waiting for the connection, if any:
 * "offline (the browser is offline), 3 writes queued".
 */
export function describeLinkState(state: LinkState, now: number, queuedWrites = 0): string {
  const line = describeState(state, now);
  return queuedWrites === 0 ? line : `${line}, ${queuedWrites} ${queuedWrites === 1 ? "write" : "writes"} queued`;
}

function describeState(state: LinkState, now: number): string {
  switch (state.kind) {
    case "connecting":
      return "connecting…";
    case "connected":
      return "connected";
    case "reconnecting": {
      const when = state.at === undefined || state.at <= now ? "reconnecting…" : `reconnecting in ${((state.at - now) / 1000).toFixed(1)} s`;
      return state.reason ? `${when} (${state.reason})` : when;
    }
    case "offline":
      return `offline (${state.reason})`;
  }
}
