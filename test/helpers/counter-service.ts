import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import type { ServiceRegistration } from "../../src/call/method-registry.js";
import { CounterService } from "../../gen/rivulet/testing/v1/counter_pb.js";

/**
 * The test-only rivulet.testing.v1.CounterService: mounted by tests to show
 * the bridges serve any method of the schema with no method-specific code.
 */
export function counterService(): ServiceRegistration {
  const impl: ServiceImpl<typeof CounterService> = {
    async *count(request) {
      if (request.to < 1 || request.to > 1_000_000) throw new ConnectError("to must be 1 to 1000000", Code.InvalidArgument);
      const after = request.cursor === "" ? 0 : Number(request.cursor);
      if (!Number.isInteger(after) || after < 0) throw new ConnectError("malformed cursor", Code.InvalidArgument);
      for (let value = after + 1; value <= request.to; value++) yield { value, cursor: String(value) };
    },
    echo(request) {
      if (request.text === "") throw new ConnectError("text is required", Code.InvalidArgument);
      // A bug's own error, with details that must never reach a client.
      if (request.text === "crash") throw new Error("ECONNREFUSED 10.1.2.3:5432 in /srv/secret/db.ts");
      return { text: request.text };
    },
  };
  return { service: CounterService, impl };
}
