/**
 * The broker carries opaque bytes between publishers and subscribers, one
 * ordered log per topic. It knows nothing about Protobuf or services.
 *
 * A position is `{epoch, offset}`. The offset counts the topic's messages
 * (1, 2, 3, ...) and is Rivulet's own, never a storage engine's id. The epoch
 * names one incarnation of the topic's log: it changes when the log is lost
 * (an in-memory broker restarted, Redis data flushed, the topic expired), so
 * a cursor from before the loss can be recognised and answered with a gap
 * instead of silently skipping or repeating messages. The same idea as
 * centrifuge's StreamPosition.
 */
export interface Position {
  readonly epoch: string;
  readonly offset: number;
  /**
   * Names the entry at this offset, when the position came from an entry's
   * cursor: its append time in ms modulo 2^32 (see cursor.ts). Brokers never
   * set it on what they return; a read after (or before) a stamped position
   * checks it where the offset may have been handed out again (a Redis
   * failover loses the last entries without changing the epoch), and answers
   * an `epoch_changed` gap when the entry there is another one.
   */
  readonly stamp?: number;
}

/** One message in a topic's log. Entries are shared by every subscriber: never mutate one. */
export interface Entry {
  readonly position: Position;
  readonly data: Uint8Array;
  /** When the broker appended it, in milliseconds since the Unix epoch. */
  readonly time: number;
}

/** How long a topic keeps its messages: whichever limit is reached first. */
export interface Retention {
  /** Keep at most this many recent messages. */
  readonly maxCount: number;
  /** Drop messages older than this; an empty, idle topic is forgotten after it. */
  readonly maxAgeMs: number;
}

export interface PublishOptions {
  readonly retention?: Retention;
  /**
   * Publish at most once per key: a publish whose key was seen within `ttlMs`
   * appends nothing and returns the original entry. Check and append are one
   * atomic step. Keys are scoped to the topic.
   */
  readonly dedupe?: { readonly key: string; readonly ttlMs: number };
  /**
   * Append only if the topic's newest entry is still at this position (a
   * compare-and-set, for read-modify-write updates that several instances
   * may race on); otherwise nothing is appended and the publish rejects with
   * ConnectError `aborted`, and the caller reads again and retries.
   */
  readonly expectHead?: Position;
}

export interface PublishResult {
  readonly entry: Entry;
  /** True when the dedupe key was seen before and nothing was appended. */
  readonly duplicate: boolean;
}

/** Where a read starts: after a position (resume), or the last N messages. */
export type ReadFrom = { readonly after: Position } | { readonly last: number };

/** Why a read could not start right after the requested position. */
export type GapReason = "trimmed" | "epoch_changed";

export interface ReadResult {
  /** The log's epoch and its last offset (0 for an empty log) when read. */
  readonly head: Position;
  /** Entries in order, at most the read's limit. */
  readonly entries: readonly Entry[];
  /**
   * Set when `after` could not be honoured: the entries then start at the
   * oldest message still retained in the current epoch. `epoch_changed` also
   * when `after` carries a stamp and the log it pointed into was rewritten
   * (the entry at its offset is another one, or it is past the head).
   */
  readonly gap?: GapReason;
}

/** A page of a topic's log read backwards from a position: see `Broker.readBefore`. */
export interface PageResult {
  /** The log's epoch and its last offset (0 for an empty log) when read. */
  readonly head: Position;
  /** The newest retained entries before the position, at most the read's limit, oldest first. */
  readonly entries: readonly Entry[];
  /**
   * Whether an entry older than the page's oldest is still retained: false
   * exactly when paging further back would return nothing.
   */
  readonly more: boolean;
  /**
   * Set when `before` belongs to another epoch, or carries a stamp and the log
   * it pointed into was rewritten (as for `ReadResult.gap`): the log it named was lost;
   * nothing is read then: the entries before it are gone, and the new log's
   * are not "before" it in any sense a caller could rely on.
   */
  readonly gap?: Extract<GapReason, "epoch_changed">;
}

/** Receives a topic's live entries in log order, and errors of the live feed. */
export interface Listener {
  entry(entry: Entry): void;
  error(error: Error): void;
}

/** Receives a topic's signals (see `Broker.signal`), synchronously; must not throw. */
export type SignalListener = (data: Uint8Array) => void;

/**
 * Receives who is present in a topic (see `Broker.watchPresence`): the whole
 * set each time, a new object per change, never mutated; must not throw.
 */
export type PresenceListener = (members: ReadonlySet<string>) => void;

/**
 * A handful of methods over opaque bytes. `listen` is a live feed with no
 * replay: subscribers combine it with `read` (see topic-hub.ts), and fill
 * any hole the feed leaves from the log, so an implementation may drop or
 * delay live entries without losing any for its subscribers.
 */
export interface Broker {
  /** Appends to the topic's log. Rejects with ConnectError `unavailable` when storage is unreachable. */
  publish(topic: string, data: Uint8Array, options?: PublishOptions): Promise<PublishResult>;
  /** Reads up to `limit` entries. Rejects with `invalid_argument` for an unstamped position ahead of the log. */
  read(topic: string, from: ReadFrom, limit: number): Promise<ReadResult>;
  /**
   * Reads backwards: the newest `limit` entries before `before` (before the
   * head's next offset when undefined), oldest first. Rejects with
   * `invalid_argument` for an unstamped position ahead of the log.
   */
  readBefore(topic: string, before: Position | undefined, limit: number): Promise<PageResult>;
  /**
   * Drops every stored entry of the topic, keeping its epoch and offsets:
   * later publishes continue after the last offset handed out, never reusing
   * one, so a position from before reads as trimmed (a `trimmed` gap), and
   * live listeners keep listening. Does nothing to a topic never published to.
   */
  removeHistory(topic: string): Promise<void>;
  /** Starts the live feed for one listener; the returned function stops it. */
  listen(topic: string, listener: Listener): () => void;
  /**
   * Sends an ephemeral message beside the topic's log: it reaches the topic's
   * signal listeners on every instance that listen now, at most once, and is
   * never stored and has no position. A listener may miss it (a connection
   * lost, an instance joining). Rejects with ConnectError `unavailable` when
   * storage is unreachable, as `publish` does.
   */
  signal(topic: string, data: Uint8Array): Promise<void>;
  /**
   * Receives the topic's signals from now on (none sent before); the returned
   * function stops it. Listeners of one topic on one instance share one feed:
   * the same `data` object is handed to each of them.
   */
  listenSignals(topic: string, listener: SignalListener): () => void;
  /**
   * Counts `user` as present in the topic from this instance until the
   * returned function is called (calling it again does nothing). Presences of
   * one user nest: the user stays present until the last of them ends. Never
   * fails: while storage is unreachable it is recorded as soon as it answers.
   * Presence held by an instance that dies without ending it expires within
   * the broker's presence TTL.
   */
  enterPresence(topic: string, user: string): () => void;
  /**
   * Watches who is present in the topic, on every instance: the listener
   * receives the current members (possibly after this returns), then the new
   * set whenever it changes; the returned function stops it. A change on
   * another instance may take a moment to arrive, an expired one up to the
   * presence TTL; a listener may skip intermediate sets, never the latest.
   */
  watchPresence(topic: string, listener: PresenceListener): () => void;
  /** Whether storage is reachable now (readiness). */
  ready(): Promise<boolean>;
  /** Releases connections and timers. */
  close(): Promise<void>;
}
