import type { Redis } from "ioredis";
import type { SignalListener } from "../broker.js";

/** The receiving side of the Redis broker's signals. */
export interface RedisSignalChannels {
  /**
   * Listens to one Pub/Sub channel; the returned function stops it.
   * `subscribed`, if given, is called once Redis confirmed the channel's
   * SUBSCRIBE: from then on no message published to it is missed (while the
   * connection holds).
   */
  listen(channel: string, listener: SignalListener, subscribed?: () => void): () => void;
}

/**
 * Receives signals (Redis Pub/Sub) on one subscriber connection for the whole
 * instance: Pub/Sub takes a connection over, so it cannot share the command
 * one. A channel is SUBSCRIBEd when its first local listener comes and
 * UNSUBSCRIBEd when its last one goes, and each message is fanned out to the
 * channel's local listeners, one Uint8Array shared by all (so a service can
 * decode it once). The connection is opened on first use, so an instance that
 * never listens to signals holds no third connection.
 *
 * Nothing here can fail a caller: a subscription sent while Redis is down
 * waits in the connection's queue, and ioredis subscribes again to every
 * channel after a reconnection. Signals published meanwhile are lost, which
 * signals allow (broker.ts, `Broker.signal`).
 */
export function createRedisSignalChannels(subscriber: Redis): RedisSignalChannels {
  /** Each channel's local listeners, and its SUBSCRIBE's confirmation. */
  const channels = new Map<string, { readonly listeners: Set<SignalListener>; readonly subscribed: Promise<unknown> }>();
  subscriber.on("messageBuffer", (channel: Buffer, message: Buffer) => {
    const listeners = channels.get(channel.toString("utf8"))?.listeners;
    if (!listeners) return; // a message already in flight when the last listener went
    const data = new Uint8Array(message.buffer, message.byteOffset, message.byteLength);
    for (const listener of listeners) listener(data);
  });
  return {
    listen(channel: string, listener: SignalListener, subscribed?: () => void): () => void {
      let entry = channels.get(channel);
      if (!entry) {
        // Commands on one connection run in order: an UNSUBSCRIBE sent before cannot undo this.
        const confirmed = subscriber.subscribe(channel);
        confirmed.catch(() => undefined);
        channels.set(channel, (entry = { listeners: new Set(), subscribed: confirmed }));
      }
      // Each call is its own listening, even for a function already listening.
      const own: SignalListener = (data) => listener(data);
      const mine = entry.listeners;
      mine.add(own);
      if (subscribed) {
        entry.subscribed.then(
          () => {
            if (mine.has(own)) subscribed();
          },
          () => undefined,
        );
      }
      return () => {
        if (!mine.delete(own) || mine.size > 0) return;
        channels.delete(channel);
        subscriber.unsubscribe(channel).catch(() => undefined);
      };
    },
  };
}
