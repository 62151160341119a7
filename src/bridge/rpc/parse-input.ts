import { fromBinary, type Message } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { BridgeMethod } from "../../call/method-registry.js";

/** Decodes a request message; connect-es (like grpc-go) reports undecodable bytes as internal, with this message. */
export function parseInput(method: BridgeMethod, bytes: Uint8Array): Message {
  try {
    return fromBinary(method.method.input, bytes);
  } catch (error) {
    throw new ConnectError(`parse binary: ${error instanceof Error ? error.message : String(error)}`, Code.Internal);
  }
}
