import { Code, ConnectError } from "@connectrpc/connect";
import type { Broker, Entry, ReadFrom } from "./broker.js";
import { gapEvent, type SlowConsumerPolicy, type SubscriptionEvent } from "./subscription-event.js";

/** One subscriber fed by a topic's shared live feed. */
export interface HubSubscriber {
  /** Where to start; `{ last: 0 }` is live only. */
  readonly from: ReadFrom;
  /** `conflate`: while catching up, only the newest entry is read, and gaps are not handed over. */
  readonly policy: SlowConsumerPolicy;
  /**
   * Takes the next event, synchronously, exactly once each and in log order.
   * Called from the broker's live feed, so it must not block: queue and
   * return. Throwing ends this subscriber (`fail` with the error) and no one else.
   * `replay` is true for events of the subscriber's own catch-up reads (at
   * most one batch at a time, after `ready()`), false for live ones.
   */
  event(event: SubscriptionEvent, replay: boolean): void;
  /** Undefined when a catch-up batch may be handed over now; else resolves when it may. */
  ready(): Promise<void> | undefined;
  /** The subscription ended with an error (the live feed, a read, or `event` threw); nothing follows. */
  fail(error: unknown): void;
}

/**
 * Subscriptions that share one live feed per topic: one broker listener per
 * topic, however many subscribers, and one synchronous call per subscriber
 * per message, which is what lets a fan-out write prepared frames straight
 * into each connection's queue. Every subscription goes through it: a
 * connection's sink (topic-stream.ts) and a pulled async iterable
 * (`subscribe()`, subscription.ts) alike, both buffered by
 * `createSubscriberBuffer` (subscriber-buffer.ts).
 */
export interface TopicHub {
  /** Replays the log from `subscriber.from`, then follows the live feed, until the returned membership's `detach`. */
  attach(topic: string, subscriber: HubSubscriber): HubMembership;
  /** Topics with a live feed on this instance now. */
  readonly topics: number;
  /** Their names (the server API's Info). */
  topicNames(): string[];
  /** A topic's feed now, for tests and diagnostics: members live and still joining, entries kept in `recent`. */
  inspect(topic: string): { readonly live: number; readonly joining: number; readonly recent: number } | undefined;
}

/** A subscriber's place in a topic's feed. */
export interface HubMembership {
  /** Leaves the feed: nothing more is handed over. Idempotent. */
  detach(): void;
}

/**
 * One subscriber in one feed: the small record an idle subscription keeps in
 * its topic. A class, so that `detach` is a method on the prototype rather
 * than a closure per subscriber.
 */
class Member implements HubMembership {
  /** The position of the last event handed over: the feed skips what the catch-up already delivered. */
  epoch: string | undefined = undefined;
  last = 0;
  closed = false;

  constructor(
    readonly subscriber: HubSubscriber,
    private readonly feed: Feed,
    private readonly hub: { drop(feed: Feed, member: Member): void },
  ) {}

  detach(): void {
    if (!this.closed) this.hub.drop(this.feed, this);
  }
}

interface Feed {
  readonly topic: string;
  /** The position of the last entry dispatched (undefined epoch: not yet read). */
  epoch: string | undefined;
  last: number;
  /** Members in sequence with the feed: each live entry goes to them at once. */
  readonly live: Set<Member>;
  /** Members still reading the log; they move to `live` once they reach the feed. */
  readonly joining: Set<Member>;
  /** The log holds entries the feed has not dispatched (a hole, a new epoch, or the first read). */
  behind: boolean;
  reading: boolean;
  /** Live entries that arrived while the feed read the log: dispatched after the read when they follow it. */
  overtaken: Entry[];
  /**
   * The entries dispatched last, in sequence, ending at `last`: a joiner whose
   * read the feed overtook takes what it missed from here instead of reading again.
   * Kept only while some member is joining (entries can be large, and only joiners
   * read them); empty otherwise.
   */
  recent: Entry[];
  /** Joiners waiting for the feed to be in sequence again. */
  waiters: Array<() => void>;
  unlisten: () => void;
}

/**
 * How many entries a catch-up read asks for. A history request (`{ last: n }`)
 * is one read of all `n` entries, however many batches that is: the log is
 * addressed from its newest entry, so a request cut to one batch would lose
 * the oldest ones (nothing after it could say so), and `n` is bounded by the
 * method's history window. Reads after a position go one batch at a time.
 */
function readLimit(from: ReadFrom, readBatch: number): number {
  return "last" in from ? Math.max(readBatch, from.last) : readBatch;
}

/**
 * Replays the log from each subscriber's start, then continues with live
 * entries, exactly once each and in order. The live feed is attached before
 * the log is read; anything the live feed does not hand over in sequence (a
 * hole, a new epoch) is read from the log, once for the whole topic, so no
 * entry is lost between the replay and the live part, and an epoch change
 * becomes a gap for every member. A new member replays on its own
 * (at its own pace, `ready()`), then joins the live set at the exact
 * position the feed has reached, so no entry is lost or repeated in between.
 *
 * Reads are slower than the live feed (one shared command connection, queued
 * behind every other read under load), so the log moves on while one is in
 * flight and the feed hears of it first. Neither the feed nor a joiner reads
 * again for that: the feed keeps what arrived during its read and dispatches
 * it after, and a joiner takes what the feed dispatched meanwhile from its
 * `recent` entries. Reading again instead was a livelock under a steady
 * publish rate: every read overtaken, so joiners never joined (issue 11).
 */
export function createTopicHub(broker: Broker, readBatch = 256): TopicHub {
  const feeds = new Map<string, Feed>();

  function feedFor(topic: string): Feed {
    const existing = feeds.get(topic);
    if (existing) return existing;
    const feed: Feed = {
      topic,
      epoch: undefined,
      last: 0,
      live: new Set(),
      joining: new Set(),
      behind: true,
      reading: false,
      overtaken: [],
      recent: [],
      waiters: [],
      unlisten: () => undefined,
    };
    feeds.set(topic, feed);
    feed.unlisten = broker.listen(topic, {
      entry: (entry) => onLive(feed, entry),
      error: (error) => failFeed(feed, ConnectError.from(error, Code.Unavailable)),
    });
    void catchUp(feed);
    return feed;
  }

  function onLive(feed: Feed, entry: Entry): void {
    const { epoch, offset } = entry.position;
    if (feed.reading && !feed.behind) {
      // Kept for after the read, up to a batch; past that, the log is read again anyway.
      if (feed.overtaken.length < readBatch) feed.overtaken.push(entry);
      else feed.behind = true;
      return;
    }
    if (feed.reading || feed.behind || feed.epoch === undefined) {
      feed.behind = true;
    } else if (epoch === feed.epoch && offset <= feed.last) {
      return; // already dispatched
    } else if (epoch === feed.epoch && offset === feed.last + 1) {
      feed.last = offset;
      dispatch(feed, { kind: "entry", entry });
      return;
    } else {
      feed.behind = true; // a hole or a new epoch: read the log
    }
    void catchUp(feed);
  }

  /** Reads the log until the feed is in sequence again, dispatching what it finds. */
  async function catchUp(feed: Feed): Promise<void> {
    if (feed.reading) return;
    feed.reading = true;
    try {
      while (feed.behind && feeds.get(feed.topic) === feed) {
        feed.behind = false;
        if (feed.epoch === undefined) {
          const { head } = await broker.read(feed.topic, { last: 0 }, 1);
          feed.epoch = head.epoch;
          feed.last = head.offset;
        } else {
          const result = await broker.read(feed.topic, { after: { epoch: feed.epoch, offset: feed.last } }, readBatch);
          if (result.gap) dispatch(feed, gapEvent(result, result.gap));
          feed.epoch = result.head.epoch;
          for (const entry of result.entries) {
            feed.last = entry.position.offset;
            dispatch(feed, { kind: "entry", entry });
          }
          if (result.entries.length === 0 && result.gap) feed.last = result.head.offset;
          if (feed.last < result.head.offset) feed.behind = true;
        }
        dispatchOvertaken(feed);
      }
    } catch (error) {
      failFeed(feed, ConnectError.from(error, Code.Unavailable));
    } finally {
      feed.reading = false;
      feed.overtaken = [];
      for (const wake of feed.waiters.splice(0)) wake();
    }
  }

  /** After a read: the live entries that arrived meanwhile, those the read did not return, if they follow it. */
  function dispatchOvertaken(feed: Feed): void {
    const overtaken = feed.overtaken;
    feed.overtaken = [];
    for (const entry of overtaken) {
      const { epoch, offset } = entry.position;
      if (epoch === feed.epoch && offset <= feed.last) continue; // the read returned it
      if (epoch !== feed.epoch || offset !== feed.last + 1) {
        feed.behind = true; // a hole or a new epoch: read the log
        return;
      }
      feed.last = offset;
      dispatch(feed, { kind: "entry", entry });
    }
  }

  function dispatch(feed: Feed, event: SubscriptionEvent): void {
    // `recent` stays one run in sequence: a gap starts it again. Recording only while a member is
    // joining covers every joiner exactly: it is in `joining` before its read starts, so an entry the
    // feed dispatched before that is in the log for the read to return (or, beyond the read's batch,
    // missedFromRecent sees the run does not reach back to it and the joiner reads again).
    if (event.kind === "gap") feed.recent = [];
    else if (feed.joining.size > 0 && feed.recent.push(event.entry) > readBatch) feed.recent.shift();
    for (const member of feed.live) {
      if (event.kind === "entry") {
        const { epoch, offset } = event.entry.position;
        if (epoch === member.epoch && offset <= member.last) continue; // its catch-up already delivered it
        member.epoch = epoch;
        member.last = offset;
      } else {
        const { epoch, offset } = event.position;
        // A member that joined ahead of the feed may already be past the gap.
        if (epoch === member.epoch && offset <= member.last) continue;
        member.epoch = epoch;
        member.last = offset;
        // Conflated streams have no gaps: their next entry is simply the newest.
        if (member.subscriber.policy === "conflate") continue;
      }
      hand(feed, member, event);
    }
  }

  function hand(feed: Feed, member: Member, event: SubscriptionEvent): void {
    try {
      member.subscriber.event(event, false);
    } catch (error) {
      drop(feed, member);
      member.subscriber.fail(error);
    }
  }

  function failFeed(feed: Feed, error: ConnectError): void {
    if (feeds.get(feed.topic) !== feed) return;
    const members = [...feed.live, ...feed.joining];
    close(feed);
    for (const member of members) {
      member.closed = true;
      member.subscriber.fail(error);
    }
  }

  function close(feed: Feed): void {
    feeds.delete(feed.topic);
    feed.unlisten();
    feed.live.clear();
    feed.joining.clear();
    feed.overtaken = [];
    feed.recent = [];
    for (const wake of feed.waiters.splice(0)) wake();
  }

  function drop(feed: Feed, member: Member): void {
    member.closed = true;
    feed.live.delete(member);
    leaveJoining(feed, member);
    if (feed.live.size === 0 && feed.joining.size === 0 && feeds.get(feed.topic) === feed) close(feed);
  }

  /** The member is no longer joining; with no joiner left, nobody reads `recent`, so its entries are let go. */
  function leaveJoining(feed: Feed, member: Member): void {
    if (feed.joining.delete(member) && feed.joining.size === 0) feed.recent = [];
  }

  /** Resolves when the feed is in sequence (or gone). */
  function settled(feed: Feed): Promise<void> | undefined {
    if (!feed.reading && !feed.behind && feed.epoch !== undefined) return undefined;
    if (feeds.get(feed.topic) !== feed) return undefined;
    return new Promise((resolve) => feed.waiters.push(resolve));
  }

  /** The entries the feed dispatched after a member's position, when `recent` holds all of them. */
  function missedFromRecent(feed: Feed, member: Member): readonly Entry[] | undefined {
    const first = feed.recent[0]?.position;
    if (first === undefined || member.epoch !== feed.epoch || first.epoch !== feed.epoch) return undefined;
    if (first.offset > member.last + 1 || member.last >= feed.last) return undefined;
    return feed.recent.slice(member.last + 1 - first.offset);
  }

  /** Replays the log for one member, then moves it into the live set. */
  async function join(feed: Feed, member: Member): Promise<void> {
    const { subscriber } = member;
    const { from } = subscriber;
    let started = false;
    let read = true;
    let askedFeed = false;
    try {
      while (!member.closed) {
        if (read) await readOnce();
        if (member.closed) return;
        // Join when the feed is in sequence and this member has reached it.
        for (let wait = settled(feed); wait; wait = settled(feed)) await wait;
        if (member.closed) return;
        if (feeds.get(feed.topic) !== feed) throw new ConnectError("topic feed ended", Code.Unavailable);
        if (member.epoch === feed.epoch && member.last >= feed.last) {
          leaveJoining(feed, member);
          feed.live.add(member);
          return;
        }
        const missed = missedFromRecent(feed, member);
        if (missed) {
          // The feed overtook this member's read: what it dispatched since is in `recent`.
          // Handed over as a catch-up batch, so only once the subscriber may take one.
          const ready = subscriber.ready();
          if (ready) {
            await ready;
            read = false;
            continue;
          }
          if (subscriber.policy === "conflate") subscriber.event({ kind: "entry", entry: missed.at(-1)! }, true);
          else for (const entry of missed) subscriber.event({ kind: "entry", entry }, true);
          if (member.closed) return;
          member.last = feed.last;
          leaveJoining(feed, member);
          feed.live.add(member);
          return;
        }
        if (member.epoch !== feed.epoch && !askedFeed) {
          // The log is in an epoch the feed has not seen yet (the topic was lost and
          // recreated, and nothing was published since): the feed reads it once, rather
          // than this member reading again and again.
          askedFeed = true;
          read = false;
          feed.behind = true;
          void catchUp(feed);
          continue;
        }
        askedFeed = false;
        read = true;
      }
    } catch (error) {
      if (member.closed) return;
      drop(feed, member);
      subscriber.fail(error);
    }

    /** One read of the log for this member: a batch of entries, or the newest for a conflated stream. */
    async function readOnce(): Promise<void> {
      const ready = subscriber.ready();
      if (ready) await ready;
      if (member.closed) return;
      if (subscriber.policy === "conflate") {
        // Only the newest entry matters, and only when it is newer than what was sent.
        const after = started ? { epoch: member.epoch ?? "", offset: member.last } : "after" in from ? from.after : undefined;
        const result = await broker.read(feed.topic, { last: 1 }, 1);
        if (member.closed) return;
        const newest = result.entries.at(-1);
        const stale = after !== undefined && newest !== undefined && after.epoch === result.head.epoch && newest.position.offset <= after.offset;
        if (newest && !stale) subscriber.event({ kind: "entry", entry: newest }, true);
        member.epoch = result.head.epoch;
        member.last = result.head.offset;
      } else {
        const readFrom: ReadFrom = started ? { after: { epoch: member.epoch ?? "", offset: member.last } } : from;
        const result = await broker.read(feed.topic, readFrom, readLimit(readFrom, readBatch));
        if (member.closed) return;
        if (result.gap) subscriber.event(gapEvent(result, result.gap), true);
        for (const entry of result.entries) subscriber.event({ kind: "entry", entry }, true);
        const newest = result.entries.at(-1)?.position.offset;
        member.epoch = result.head.epoch;
        member.last = newest ?? ("after" in readFrom && !result.gap ? readFrom.after.offset : result.head.offset);
      }
      started = true;
    }
  }

  const dropper = { drop };
  return {
    attach(topic, subscriber) {
      const feed = feedFor(topic);
      const member = new Member(subscriber, feed, dropper);
      feed.joining.add(member);
      void join(feed, member);
      return member;
    },
    get topics() {
      return feeds.size;
    },
    topicNames: () => [...feeds.keys()],
    inspect(topic) {
      const feed = feeds.get(topic);
      return feed && { live: feed.live.size, joining: feed.joining.size, recent: feed.recent.length };
    },
  };
}
