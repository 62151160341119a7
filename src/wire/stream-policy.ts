import { getOption, hasOption } from "@bufbuild/protobuf";
import type { DescMethod } from "@bufbuild/protobuf";
import { SlowConsumerPolicy, stream } from "../../gen/rivulet/options/v1/options_pb.js";

/** A server-streaming method's policy, read from its `rivulet.options.v1.stream` option. */
export interface StreamPolicy {
  /** Requests take a top-level `cursor` and responses carry one. */
  readonly resumable: boolean;
  /** Most history messages a subscriber may ask for. */
  readonly historyWindow: number;
  readonly slowConsumer: "lossless" | "conflate";
}

const defaultPolicy: StreamPolicy = { resumable: false, historyWindow: 0, slowConsumer: "lossless" };
const cache = new WeakMap<DescMethod, StreamPolicy>();

/** The stream policy of a method; methods without the option get a non-resumable lossless default. */
export function streamPolicyOf(method: DescMethod): StreamPolicy {
  let policy = cache.get(method);
  if (!policy) {
    if (hasOption(method, stream)) {
      const option = getOption(method, stream);
      policy = {
        resumable: option.resumable,
        historyWindow: option.historyWindow,
        slowConsumer: option.slowConsumer === SlowConsumerPolicy.CONFLATE ? "conflate" : "lossless",
      };
    } else {
      policy = defaultPolicy;
    }
    cache.set(method, policy);
  }
  return policy;
}
