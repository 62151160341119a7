import { describe } from "vitest";
import { createRedisBroker } from "../../src/broker/redis/redis-broker.js";
import { describeBrokerContract } from "./contract.js";
import { clusterAvailable, sharedClusterUrl } from "./test-cluster.js";
import { deleteKeys, uniquePrefix } from "./test-redis.js";

// The contract again, on the run's shared Redis Cluster (3 masters with a replica each):
// each topic lives on the master of its slot, so a test's topics spread over all three.
describe.runIf(clusterAvailable())("Redis broker on Redis Cluster", () => {
  const url = sharedClusterUrl!;
  describeBrokerContract("redis-cluster", async ({ now, retention }) => {
    const prefix = uniquePrefix();
    const broker = await createRedisBroker({ url, prefix, now, retention });
    return {
      broker,
      async loseData() {
        await deleteKeys(prefix, url);
        return broker;
      },
      async close() {
        await broker.close();
        await deleteKeys(prefix, url);
      },
    };
  });
});
