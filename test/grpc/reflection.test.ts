// gRPC server reflection (v1 and v1alpha): `buf curl --reflect` (the buf CLI
// npm installs) finds and calls methods with no schema of its own, and a
// generated Connect client asks the lookups buf curl does not (symbols,
// files, extensions, errors) on one bidirectional stream over h2c.
import type { ChildProcess } from "node:child_process";
import { create, fromBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import { Code, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ServerReflection, ServerReflectionRequestSchema, type ServerReflectionResponse } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import { ServerReflection as ServerReflectionV1alpha } from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { ChatService } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { bearer, clientFor, transportFor } from "../helpers/clients.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { runBufCurl } from "./buf-curl.js";

/** Every service the server answers on gRPC: Rivulet's, health and reflection; no test-only service. */
const servedServices = [
  "grpc.health.v1.Health",
  "grpc.reflection.v1.ServerReflection",
  "grpc.reflection.v1alpha.ServerReflection",
  "rivulet.admin.v1.AdminService",
  "rivulet.chat.v1.ChatService",
  "rivulet.notify.v1.NotificationService",
  "rivulet.progress.v1.ProgressService",
];

/** A client stream that sends these messages, then half-closes. */
async function* streamOf<T>(messages: readonly T[]): AsyncIterable<T> {
  yield* messages;
}

describe("gRPC server reflection", () => {
  let server: TestServer;
  const children = new Set<ChildProcess>();
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    for (const child of children) child.kill();
    await server?.close();
  });

  describe.each(["grpc-v1", "grpc-v1alpha"])("buf curl --reflect-protocol %s", (reflectProtocol) => {
    it("lists every served service, asking no credentials", async () => {
      const { code, lines, stderr } = await runBufCurl(["--reflect-protocol", reflectProtocol, "--list-services", server.url], children).exited;
      expect(code, stderr).toBe(0);
      expect(lines.filter(Boolean).sort()).toEqual(servedServices);
    });

    it("calls ChatService/Subscribe, a server stream, with a token and prints each message", async () => {
      const token = await server.token("alice");
      const chat = clientFor(ChatService, transportFor(server.url, "grpc", "2"));
      const room = `reflect-${reflectProtocol}`;
      const sent = [];
      for (const text of ["first", "second: ünïcödé ✓"]) sent.push((await chat.send({ room, text }, bearer(token))).message!);

      const curl = runBufCurl(
        [
          "--reflect-protocol",
          reflectProtocol,
          "-H",
          `authorization: Bearer ${token}`,
          "-d",
          JSON.stringify({ room, history: 2 }),
          `${server.url}/rivulet.chat.v1.ChatService/Subscribe`,
        ],
        children,
      );
      for (const message of sent) {
        expect(await curl.nextObject()).toEqual({
          cursor: message.cursor,
          message: { id: message.id, room, author: "alice", text: message.text, sentAt: expect.any(String), cursor: message.cursor },
        });
      }
      // Live too: a message sent now arrives on the open stream.
      const live = (await chat.send({ room, text: "live" }, bearer(token))).message!;
      expect(await curl.nextObject()).toMatchObject({ cursor: live.cursor, message: { text: "live" } });
      curl.process.kill();
    });
  });

  it("refuses the Subscribe buf curl sends without a token (reflection is public, the services are not)", async () => {
    const { code, stderr } = await runBufCurl(
      ["-d", JSON.stringify({ room: "reflect-no-token" }), `${server.url}/rivulet.chat.v1.ChatService/Subscribe`],
      children,
    ).exited;
    expect(code).not.toBe(0);
    expect(stderr).toContain("unauthenticated");
  });

  describe("lookups from a generated client", () => {
    type Request = MessageInitShape<typeof ServerReflectionRequestSchema>;
    /** Asks each request on one stream and returns the answers in order. */
    async function ask(requests: readonly Request[]): Promise<ServerReflectionResponse[]> {
      const reflection = createClient(ServerReflection, createGrpcTransport({ baseUrl: server.url }));
      const answers: ServerReflectionResponse[] = [];
      for await (const answer of reflection.serverReflectionInfo(streamOf(requests.map((request) => create(ServerReflectionRequestSchema, request)))))
        answers.push(answer);
      return answers;
    }
    const symbol = (name: string): Request => ({ host: "", messageRequest: { case: "fileContainingSymbol", value: name } });
    /** The files of a file_descriptor_response, decoded. */
    function filesOf(answer: ServerReflectionResponse | undefined): FileDescriptorProto[] {
      if (answer?.messageResponse.case !== "fileDescriptorResponse") throw new Error(`not a file response: ${JSON.stringify(answer?.messageResponse)}`);
      return answer.messageResponse.value.fileDescriptorProto.map((bytes) => fromBinary(FileDescriptorProtoSchema, bytes));
    }

    it("finds the file of services, methods, messages, nested enums, fields and enum values, with every import", async () => {
      const cases: [string, string][] = [
        ["rivulet.chat.v1.ChatService", "rivulet/chat/v1/chat.proto"],
        ["rivulet.chat.v1.ChatService.Subscribe", "rivulet/chat/v1/chat.proto"],
        ["rivulet.chat.v1.SubscribeRequest", "rivulet/chat/v1/chat.proto"],
        ["rivulet.chat.v1.SubscribeRequest.room", "rivulet/chat/v1/chat.proto"],
        ["rivulet.progress.v1.JobState", "rivulet/progress/v1/progress.proto"],
        ["rivulet.stream.v1.GapReason", "rivulet/stream/v1/gap.proto"],
        ["grpc.health.v1.HealthCheckResponse.ServingStatus", "grpc/health/v1/health.proto"],
        // An enum value is named beside its enum, inside the enclosing message.
        ["grpc.health.v1.HealthCheckResponse.NOT_SERVING", "grpc/health/v1/health.proto"],
        ["rivulet.options.v1.stream", "rivulet/options/v1/options.proto"],
      ];
      const answers = await ask(cases.map(([name]) => symbol(name)));
      cases.forEach(([name, file], i) => {
        const files = filesOf(answers[i]);
        expect(files[0]?.name, name).toBe(file);
        // Self-contained: every import of every file sent is sent too.
        const names = new Set(files.map((each) => each.name));
        for (const each of files) for (const dependency of each.dependency) expect(names, `${name}: ${dependency}`).toContain(dependency);
      });
      expect(filesOf(answers[0]).map((each) => each.name)).toEqual(
        expect.arrayContaining(["rivulet/options/v1/options.proto", "google/protobuf/descriptor.proto", "google/protobuf/timestamp.proto"]),
      );
    });

    it("answers files by name, extensions of MethodOptions, and NOT_FOUND without ending the stream", async () => {
      const [byName, numbers, extension, unknownSymbol, unknownType, unknownExtension, afterErrors] = await ask([
        { messageRequest: { case: "fileByFilename", value: "rivulet/chat/v1/chat.proto" } },
        { messageRequest: { case: "allExtensionNumbersOfType", value: "google.protobuf.MethodOptions" } },
        { messageRequest: { case: "fileContainingExtension", value: { containingType: "google.protobuf.MethodOptions", extensionNumber: 51001 } } },
        symbol("rivulet.nope.v1.Nope"),
        { messageRequest: { case: "allExtensionNumbersOfType", value: "rivulet.nope.v1.Nope" } },
        { messageRequest: { case: "fileContainingExtension", value: { containingType: "google.protobuf.MethodOptions", extensionNumber: 1 } } },
        { host: "example", messageRequest: { case: "listServices", value: "" } },
      ]);
      expect(filesOf(byName)[0]?.name).toBe("rivulet/chat/v1/chat.proto");
      expect(numbers?.messageResponse).toEqual({
        case: "allExtensionNumbersResponse",
        value: expect.objectContaining({ baseTypeName: "google.protobuf.MethodOptions", extensionNumber: [51001] }),
      });
      expect(filesOf(extension)[0]?.name).toBe("rivulet/options/v1/options.proto");
      for (const answer of [unknownSymbol, unknownType, unknownExtension]) {
        expect(answer?.messageResponse).toMatchObject({ case: "errorResponse", value: { errorCode: Code.NotFound } });
      }
      expect(afterErrors?.validHost).toBe("example");
      expect(afterErrors?.originalRequest?.messageRequest.case).toBe("listServices");
      expect(afterErrors?.messageResponse.case === "listServicesResponse" && afterErrors.messageResponse.value.service.map((s) => s.name).sort()).toEqual(
        servedServices,
      );
    });

    it("answers v1alpha the same way", async () => {
      const reflection = createClient(ServerReflectionV1alpha, createGrpcTransport({ baseUrl: server.url }));
      const answers = [];
      for await (const answer of reflection.serverReflectionInfo(
        streamOf([{ messageRequest: { case: "fileContainingSymbol" as const, value: "rivulet.chat.v1.ChatService.Subscribe" } }]),
      )) {
        answers.push(answer);
      }
      expect(answers).toHaveLength(1);
      const response = answers[0]!.messageResponse;
      if (response.case !== "fileDescriptorResponse") throw new Error(`not a file response: ${response.case}`);
      expect(fromBinary(FileDescriptorProtoSchema, response.value.fileDescriptorProto[0]!).name).toBe("rivulet/chat/v1/chat.proto");
    });
  });
});
