import { create, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { Code, type ServiceImpl } from "@connectrpc/connect";
import {
  type ServerReflection,
  type ServerReflectionRequest,
  ServerReflectionRequestSchema,
  ServerReflectionResponseSchema,
} from "../../gen/grpc/reflection/v1/reflection_pb.js";
import {
  type ServerReflection as ServerReflectionV1alpha,
  ServerReflectionRequestSchema as ServerReflectionRequestSchemaV1alpha,
  ServerReflectionResponseSchema as ServerReflectionResponseSchemaV1alpha,
} from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import type { ReflectionIndex } from "./reflection-index.js";

type Response = MessageInitShape<typeof ServerReflectionResponseSchema>;

/**
 * `grpc.reflection.v1.ServerReflection`
 * (https://github.com/grpc/grpc/blob/master/doc/server-reflection.md): one
 * answer per request on a bidirectional stream, so grpcurl, grpcui, Postman
 * and `buf curl --reflect` find and call every method without the schema.
 * connect-node serves bidirectional streams over HTTP/2 only, as gRPC is.
 */
export function createReflectionService(index: ReflectionIndex): ServiceImpl<typeof ServerReflection> {
  return {
    async *serverReflectionInfo(requests) {
      for await (const request of requests) yield answer(index, request);
    },
  };
}

/**
 * `grpc.reflection.v1alpha.ServerReflection`, still what many tools ask
 * first. Its messages are v1's under another package, field for field (the
 * v1 proto was copied from it), so each request is read as v1 from its bytes
 * and the v1 answer written back the same way: one implementation, no field
 * mapping to drift.
 */
export function createReflectionServiceV1alpha(index: ReflectionIndex): ServiceImpl<typeof ServerReflectionV1alpha> {
  return {
    async *serverReflectionInfo(requests) {
      for await (const request of requests) {
        const v1Request = fromBinary(ServerReflectionRequestSchema, toBinary(ServerReflectionRequestSchemaV1alpha, request));
        const v1Response = create(ServerReflectionResponseSchema, answer(index, v1Request));
        yield fromBinary(ServerReflectionResponseSchemaV1alpha, toBinary(ServerReflectionResponseSchema, v1Response));
      }
    },
  };
}

/**
 * The answer to one request; what is not found is an `error_response`
 * (NOT_FOUND), and the stream goes on. Connect's codes are gRPC's status
 * numbers, so `Code` fills `error_code` as is.
 */
function answer(index: ReflectionIndex, request: ServerReflectionRequest): Response {
  const respond = (messageResponse: Response["messageResponse"]): Response => ({ validHost: request.host, originalRequest: request, messageResponse });
  const notFound = (what: string) => respond({ case: "errorResponse", value: { errorCode: Code.NotFound, errorMessage: `${what} not found` } });
  const files = (file: ReturnType<ReflectionIndex["fileByName"]>, what: string) =>
    file ? respond({ case: "fileDescriptorResponse", value: { fileDescriptorProto: index.serializedWithDependencies(file) } }) : notFound(what);

  const { case: kind, value } = request.messageRequest;
  switch (kind) {
    case "listServices":
      return respond({ case: "listServicesResponse", value: { service: index.serviceNames.map((name) => ({ name })) } });
    case "fileByFilename":
      return files(index.fileByName(value), `file ${JSON.stringify(value)}`);
    case "fileContainingSymbol":
      return files(index.fileContainingSymbol(value), `symbol ${JSON.stringify(value)}`);
    case "fileContainingExtension":
      return files(
        index.fileContainingExtension(value.containingType, value.extensionNumber),
        `extension ${value.extensionNumber} of ${JSON.stringify(value.containingType)}`,
      );
    case "allExtensionNumbersOfType": {
      const numbers = index.extensionNumbersOf(value);
      return numbers
        ? respond({ case: "allExtensionNumbersResponse", value: { baseTypeName: value, extensionNumber: numbers } })
        : notFound(`message ${JSON.stringify(value)}`);
    }
    case undefined:
      return respond({
        case: "errorResponse",
        value: { errorCode: Code.InvalidArgument, errorMessage: "the request asks nothing (message_request is unset)" },
      });
  }
}
