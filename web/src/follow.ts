import { Code, ConnectError } from "@connectrpc/connect";
import type { LinkState } from "./link-state.js";
import { retryableCodes } from "./rivulet.js";

/** How `follow` keeps one server stream open. */
export interface FollowOptions<R> {
  /** Opens the stream; called again for every retry, so it resumes from whatever cursor the caller has kept. */
  open(signal: AbortSignal): AsyncIterable<R>;
  onResponse(response: R): void;
  onState(state: LinkState): void;
  /** An error retrying cannot fix: the stream stops here. */
  onFatal(error: ConnectError): void;
  /** The server refused the token: the next attempt should mint a new one. */
  forgetToken(): void;
  readonly signal: AbortSignal;
}

/**
 * Codes worth another attempt: the client's (docs/client.md, "Retryable
 * codes"), plus `resource_exhausted` (a slow consumer ended, a limit to wait
 * out) and `unknown` and `internal`, which is what a browser's failed fetch
 * becomes: a server that is restarting looks like that to Connect-Web.
 */
const retryable = new Set([...retryableCodes, Code.ResourceExhausted, Code.Unknown, Code.Internal]);

/**
 * Keeps a server stream open for the page: the WebSocket and SSE clients
 * resume by themselves after drops, but a stream still ends when it fails
 * in a way they give up on (a refused token, a server down for long, or any
 * drop on Connect-Web, which has no resume of its own). Then this waits a
 * jittered, doubling delay (shown as a countdown) and opens it again. A
 * refused token is retried once with a new one; a second refusal in a row
 * is fatal, as is any code that retrying cannot fix.
 */
export async function follow<R>(options: FollowOptions<R>): Promise<void> {
  let attempt = 0;
  let refusals = 0;
  while (!options.signal.aborted) {
    let reason: ConnectError;
    try {
      for await (const response of options.open(options.signal)) {
        attempt = 0;
        refusals = 0;
        options.onState({ kind: "connected" });
        options.onResponse(response);
      }
      reason = new ConnectError("the server ended the stream", Code.Unavailable);
    } catch (error) {
      if (options.signal.aborted) return;
      reason = ConnectError.from(error);
    }
    if (reason.code === Code.Unauthenticated && refusals++ === 0) {
      options.forgetToken();
    } else if (!retryable.has(reason.code)) {
      options.onFatal(reason);
      return;
    }
    const delayMs = Math.max(100, Math.random() * Math.min(10_000, 500 * 2 ** attempt++));
    options.onState({ kind: "reconnecting", at: Date.now() + delayMs, reason: reason.rawMessage });
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, delayMs);
      options.signal.addEventListener("abort", done, { once: true });
      function done() {
        clearTimeout(timer);
        options.signal.removeEventListener("abort", done);
        resolve();
      }
    });
  }
}
