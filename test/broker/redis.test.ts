import { describe } from "vitest";
import { createRedisBroker } from "../../src/broker/redis/redis-broker.js";
import { describeBrokerContract } from "./contract.js";
import { deleteKeys, redisAvailable, redisUrl, uniquePrefix } from "./test-redis.js";

// Each test gets its own key prefix; losing data deletes exactly those keys,
// as FLUSHALL would for this broker, without touching what other suites use.
describe.runIf(redisAvailable())("Redis broker", () => {
  describeBrokerContract("redis", async ({ now, retention }) => {
    const prefix = uniquePrefix();
    const broker = await createRedisBroker({ url: redisUrl, prefix, now, retention });
    return {
      broker,
      async loseData() {
        await deleteKeys(prefix);
        return broker;
      },
      async close() {
        await broker.close();
        await deleteKeys(prefix);
      },
    };
  });
});
