/** The Redis keys of the broker, all under one prefix. */
export interface RedisKeys {
  /** The topic's epoch, offset counter and retention (a hash). */
  meta(topic: string): string;
  /** The topic's history (a stream). */
  log(topic: string): string;
  /** One dedupe record of the topic (a hash). */
  seen(topic: string, key: string): string;
  /** The topic's signal channel (Redis Pub/Sub): signals are published, never stored. */
  signals(topic: string): string;
  /** Who is present in the topic (a sorted set of `<instance id>\n<user>` scored by expiry, ms): see presence.ts. */
  presence(topic: string): string;
  /** The topic's presence channel (Redis Pub/Sub): a message, empty, says its presence changed. */
  presenceChanges(topic: string): string;
  /** The topic's append channel (Redis Cluster only): the publish script announces each entry here, see notified-reader.ts. */
  live(topic: string): string;
  /** An instance's wake-up stream: the live reader blocks on it too, so a new topic interrupts the wait. */
  wake(instanceId: string): string;
}

/**
 * Every key of a topic carries the hash tag `{<topic>}`, so they share one
 * slot and a script may touch them all, on Redis Cluster too. A topic name
 * containing `}` still works: the tag is then the part before it, the same
 * for every key of that topic.
 */
export function createRedisKeys(prefix: string): RedisKeys {
  if (/[{}]/.test(prefix)) throw new Error(`the Redis key prefix must not contain braces: "${prefix}"`);
  return {
    meta: (topic) => `${prefix}{${topic}}:meta`,
    log: (topic) => `${prefix}{${topic}}:log`,
    seen: (topic, key) => `${prefix}{${topic}}:seen:${key}`,
    signals: (topic) => `${prefix}{${topic}}:signals`,
    presence: (topic) => `${prefix}{${topic}}:presence`,
    presenceChanges: (topic) => `${prefix}{${topic}}:presence-changes`,
    live: (topic) => `${prefix}{${topic}}:live`,
    wake: (instanceId) => `${prefix}{instance:${instanceId}}:wake`,
  };
}
