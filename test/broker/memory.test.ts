import type { Broker } from "../../src/broker/broker.js";
import { createMemoryBroker } from "../../src/broker/memory.js";
import { describeBrokerContract } from "./contract.js";

// The in-memory broker loses its data the way a restart does: a new broker.
describeBrokerContract("memory", ({ now, retention }) => {
  let broker: Broker = createMemoryBroker({ now, retention });
  return Promise.resolve({
    get broker() {
      return broker;
    },
    async loseData() {
      await broker.close();
      broker = createMemoryBroker({ now, retention });
      return broker;
    },
    close: () => broker.close(),
  });
});
