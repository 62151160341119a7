import type { DescMethodUnary } from "@bufbuild/protobuf";
import type { Transport } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { describeCallError, UsageError, type ExitCode } from "./errors.js";
import { findMethod, requestFromJson, responseLine } from "./methods.js";
import { authorization, clientOptions, clientOptionsHelp, endpointOf, parse } from "./options.js";

export const callHelp = `Usage: rivulet call <Service/Method> [JSON] [--url URL] [--token TOKEN]

Makes one unary call over the Connect protocol (JSON) and prints the response
as one JSON line. The method is rivulet.chat.v1.ChatService/Send or ChatService/Send;
the request is proto3 JSON ({} when left out). For a server stream, use rivulet tail.

${clientOptionsHelp}

Exit codes: 0 ok; 1 the call failed (its Connect code and message on stderr); 2 usage.
Example: rivulet call ChatService/Send '{"room":"lobby","text":"hi"}'
`;

/** `rivulet call`: one unary call, its response as one JSON line. */
export async function call(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<ExitCode> {
  const { values, positionals } = parse(argv, clientOptions, "call");
  if (values.help) {
    process.stdout.write(callHelp);
    return 0;
  }
  const [name, json, ...rest] = positionals;
  if (name === undefined) throw new UsageError('name the method, such as rivulet call ChatService/Send \'{"room":"lobby","text":"hi"}\'');
  if (rest.length > 0) throw new UsageError(`one JSON request only, got also "${rest.join(" ")}"; quote the JSON`);
  const method = findMethod(name);
  if (method.methodKind !== "unary")
    throw new UsageError(`${method.parent.typeName}/${method.name} is a ${method.methodKind.replace("_", " ")} method: use rivulet tail`);
  const request = requestFromJson(method, json);
  const endpoint = endpointOf(values, env);
  const transport: Transport = createConnectTransport({ baseUrl: endpoint.url, httpVersion: "1.1" });
  try {
    const response = await transport.unary(method as DescMethodUnary, undefined, undefined, authorization(endpoint), request);
    process.stdout.write(responseLine(method.output, response.message));
    return 0;
  } catch (error) {
    process.stderr.write(`rivulet: ${describeCallError(error, endpoint.url)}\n`);
    return 1;
  }
}
