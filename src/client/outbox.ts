import { Code, ConnectError } from "@connectrpc/connect";
import { backoffDelay, type BackoffOptions } from "../wire/backoff.js";
import { isTransient } from "../wire/transient-codes.js";

/**
 * The WebSocket transport's outbox: writes made while the connection is down
 * wait here, in order, until the server has answered them. A store outlives
 * the transport when it is durable (IndexedDB, `indexeddb-outbox.ts`), so a
 * page reloaded or reopened replays what the last one could not send.
 */

/** One queued write: everything needed to send it again, from any page, without the caller that made it. */
export interface OutboxEntry {
  /** Assigned by the store on `put`, increasing: the replay order. */
  readonly id: number;
  /** The call frame's method, `package.Service/Method`. */
  readonly method: string;
  /** The encoded request, its `idempotency_key` already filled in. */
  readonly request: Uint8Array;
  /** The call's own headers (the transport's `token` is asked anew at each send, never stored). */
  readonly headers: Readonly<Record<string, string>>;
  /** The request's `idempotency_key`, or "" for a method without one that the transport was told to queue anyway. */
  readonly idempotencyKey: string;
  /** When the write was made (ms since the epoch), for UIs and for dropping stale entries. */
  readonly queuedAt: number;
}

/** An entry before the store gave it its id. */
export type NewOutboxEntry = Omit<OutboxEntry, "id">;

/**
 * Where queued writes wait. `put` appends, `list` returns every entry in `id`
 * order, `delete` removes one (deleting a missing id is not an error). A store
 * with a `name` may be shared by several transports (tabs): the transport then
 * drains it under the Web Lock `rivulet-outbox:<name>` when the runtime has
 * `navigator.locks`, so two tabs never replay the same entry at once, and
 * tells the other tabs each outcome on the BroadcastChannel of the same name.
 */
export interface OutboxStore {
  readonly name?: string;
  put(entry: NewOutboxEntry): Promise<OutboxEntry>;
  list(): Promise<OutboxEntry[]>;
  delete(id: number): Promise<void>;
}

/** An outbox in memory: the order and replay of a durable one, for as long as the process lives (Node, tests). */
export function createMemoryOutbox(): OutboxStore {
  const entries: OutboxEntry[] = [];
  let nextId = 1;
  return {
    put(entry) {
      const stored = { ...entry, id: nextId++ };
      entries.push(stored);
      return Promise.resolve(stored);
    },
    list: () => Promise.resolve([...entries]),
    delete(id) {
      const index = entries.findIndex((e) => e.id === id);
      if (index >= 0) entries.splice(index, 1);
      return Promise.resolve();
    },
  };
}

/** How a queued write ended: the server's response bytes, or its error. */
export type OutboxOutcome = { readonly ok: true; readonly response: Uint8Array } | { readonly ok: false; readonly error: ConnectError };

/** What the transport gives the runner. */
export interface OutboxRunnerOptions {
  readonly store: OutboxStore;
  /**
   * Sends one entry and resolves with the server's answer. It waits through
   * reconnects (the session holds the call until a socket is open), so it
   * resolves only with an answer, or `canceled` when the transport closed.
   */
  send(entry: OutboxEntry): Promise<OutboxOutcome>;
  /** Delays between retries of an entry the server refused for a while (unavailable, resource_exhausted). */
  readonly backoff: BackoffOptions;
  /** A write failed and nobody in this transport waits for it (it was queued by an earlier page), or the store failed. */
  readonly onError?: (error: ConnectError, entry: OutboxEntry | undefined) => void;
  /** The number of entries in the store changed (as this runner saw it: after its own puts and deletes, and other tabs' outcomes). */
  readonly onCountChange?: (count: number) => void;
}

/** The transport's handle on its outbox. */
export interface OutboxRunner {
  /** Whether the outbox is (or may be) non-empty: a new write must then queue behind it to keep the order. */
  readonly busy: boolean;
  /** Entries in the store, as last listed (0 until the first list). */
  readonly count: number;
  /** Stores the write, then resolves with its outcome once the server answered it (or rejects when it could not be stored). */
  enqueue(entry: NewOutboxEntry, signal: AbortSignal | undefined): Promise<OutboxOutcome>;
  /** Stops draining; entries stay in the store, and writes still waiting end with `canceled`. */
  close(): void;
}

interface Waiter {
  resolve(outcome: OutboxOutcome): void;
}

/** What a draining tab tells the others on the BroadcastChannel. */
type OutcomeNotice = { readonly id: number; readonly response?: Uint8Array; readonly code?: Code; readonly message?: string };

/**
 * Drains an outbox in order, one write at a time: each entry is sent, and
 * deleted once the server answered (a response, or an error that retrying
 * will not change). One write at a time is what makes the order hold: calls
 * multiplexed on a socket are served concurrently. A transient error keeps
 * the entry and retries it after a backoff. The transport starts a drain when
 * created (entries left by an earlier page) and after each `enqueue`.
 */
export function createOutboxRunner(options: OutboxRunnerOptions): OutboxRunner {
  const { store } = options;
  const waiters = new Map<number, Waiter>();
  const channelName = store.name === undefined ? undefined : `rivulet-outbox:${store.name}`;
  const channel = channelName !== undefined && typeof BroadcastChannel === "function" ? new BroadcastChannel(channelName) : undefined;
  channel?.addEventListener("message", (event: MessageEvent<OutcomeNotice>) => {
    const notice = event.data;
    const outcome: OutboxOutcome =
      notice.response !== undefined
        ? { ok: true, response: notice.response }
        : { ok: false, error: new ConnectError(notice.message ?? "", notice.code ?? Code.Unknown) };
    settle(notice.id, outcome, false);
    recount();
  });
  /** The entry this transport has on the wire: an abort can no longer take it back. */
  let inFlight: number | undefined;
  let running = false;
  let wanted = false;
  let pending = 0;
  let closed = false;
  let retryTimer: ReturnType<typeof setTimeout> | undefined;
  let wakeRetry: (() => void) | undefined;
  let count = 0;
  let counting: Promise<void> = Promise.resolve();

  /** Lists the store again (one list at a time, so counts arrive in order) and reports a new count. */
  function recount(): void {
    counting = counting
      .then(() => store.list())
      .then(
        (entries) => {
          if (entries.length === count || closed) return;
          count = entries.length;
          options.onCountChange?.(count);
        },
        () => undefined, // a store that cannot list is reported by the drain
      );
  }

  /** Hands an outcome to whoever waits here; returns whether anybody did. */
  function settle(id: number, outcome: OutboxOutcome, drainedHere: boolean): boolean {
    const waiter = waiters.get(id);
    waiters.delete(id);
    if (drainedHere && channel) {
      channel.postMessage(
        outcome.ok
          ? ({ id, response: outcome.response } satisfies OutcomeNotice)
          : ({ id, code: outcome.error.code, message: outcome.error.rawMessage } satisfies OutcomeNotice),
      );
    }
    waiter?.resolve(outcome);
    return waiter !== undefined;
  }

  /** Runs `fn` holding the outbox's Web Lock when it is shared and the runtime has locks, else directly. */
  function exclusive(fn: () => Promise<void>): Promise<void> {
    const locks = (globalThis.navigator as { locks?: LockManager } | undefined)?.locks;
    if (channelName === undefined || locks === undefined) return fn();
    return locks.request(channelName, fn);
  }

  function drain(): void {
    wanted = true;
    if (running || closed) return;
    running = true;
    void (async () => {
      try {
        while (wanted && !closed) {
          wanted = false;
          await exclusive(drainAll);
        }
      } catch (error) {
        options.onError?.(ConnectError.from(error), undefined);
      } finally {
        running = false;
      }
    })();
  }

  /** Sends every entry, oldest first, until the store is empty (listed anew each time: other tabs may add or remove). */
  async function drainAll(): Promise<void> {
    for (let next = (await store.list())[0]; next !== undefined && !closed; next = (await store.list())[0]) {
      await deliver(next);
    }
  }

  async function deliver(entry: OutboxEntry): Promise<void> {
    for (let attempt = 0; !closed; attempt++) {
      inFlight = entry.id;
      const outcome = await options.send(entry);
      inFlight = undefined;
      if (closed) return; // the transport closed under the call: the entry stays for the next page
      if (!outcome.ok && isTransient(outcome.error.code, { limitLifts: true })) {
        await new Promise<void>((resolve) => {
          wakeRetry = resolve;
          retryTimer = setTimeout(resolve, backoffDelay(attempt, options.backoff));
        });
        continue;
      }
      await store.delete(entry.id);
      recount();
      const awaited = settle(entry.id, outcome, true);
      if (!outcome.ok && !awaited) options.onError?.(outcome.error, entry);
      return;
    }
  }

  // Entries an earlier page (or transport) left behind go out as soon as the connection allows.
  pending++;
  void store.list().then(
    (entries) => {
      pending--;
      if (entries.length > 0) drain();
      recount();
    },
    (error: unknown) => {
      pending--;
      options.onError?.(ConnectError.from(error), undefined);
    },
  );

  return {
    get busy() {
      return running || pending > 0;
    },
    get count() {
      return count;
    },
    async enqueue(entry, signal) {
      pending++;
      let stored: OutboxEntry;
      try {
        stored = await store.put(entry);
      } catch (error) {
        // Quota, private mode, site data cleared: the write was not queued, and the caller must know.
        const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
        throw new ConnectError(`the outbox could not store the write (${reason})`, Code.ResourceExhausted);
      } finally {
        pending--;
      }
      recount();
      const outcome = new Promise<OutboxOutcome>((resolve) => waiters.set(stored.id, { resolve }));
      if (closed) settle(stored.id, { ok: false, error: closedError() }, false);
      else drain();
      if (signal) {
        const abort = () => {
          // Not yet on the wire: take it back. On the wire, it may still take effect; only the caller stops waiting.
          if (inFlight !== stored.id) void store.delete(stored.id).then(recount, () => undefined);
          settle(stored.id, { ok: false, error: ConnectError.from(signal.reason, Code.Canceled) }, false);
        };
        if (signal.aborted) abort();
        else signal.addEventListener("abort", abort, { once: true });
        void outcome.then(() => signal.removeEventListener("abort", abort));
      }
      return outcome;
    },
    close() {
      if (closed) return;
      closed = true;
      clearTimeout(retryTimer);
      wakeRetry?.();
      channel?.close();
      for (const id of [...waiters.keys()]) settle(id, { ok: false, error: closedError() }, false);
    },
  };
}

function closedError(): ConnectError {
  return new ConnectError("the WebSocket transport is closed; the write stays in the outbox for the next transport", Code.Canceled);
}
