import { createRegistry, fromJson, toJson, type DescMessage, type DescMethod, type DescService, type JsonValue, type Message } from "@bufbuild/protobuf";
import { file_rivulet_admin_v1_admin, AdminService } from "../../gen/rivulet/admin/v1/admin_pb.js";
import { file_rivulet_chat_v1_chat, ChatService } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { file_rivulet_notify_v1_notify, NotificationService } from "../../gen/rivulet/notify/v1/notify_pb.js";
import { file_rivulet_progress_v1_progress, ProgressService } from "../../gen/rivulet/progress/v1/progress_pb.js";
import { file_rivulet_stream_v1_gap } from "../../gen/rivulet/stream/v1/gap_pb.js";
import { UsageError } from "./errors.js";

/** The services a client may call: the public ones of gen/rivulet (not the authorize hook, which backends serve, nor the test-only CounterService). */
const services: readonly DescService[] = [ChatService, NotificationService, ProgressService, AdminService];

/** Every type of the public schema, so JSON reads and writes `Any` and well-known types as the server does. */
export const registry = createRegistry(
  file_rivulet_chat_v1_chat,
  file_rivulet_notify_v1_notify,
  file_rivulet_progress_v1_progress,
  file_rivulet_admin_v1_admin,
  file_rivulet_stream_v1_gap,
);

/**
 * The method a user names: `rivulet.chat.v1.ChatService/Send` or, when the
 * service's short name is unique, `ChatService/Send` (a leading `/` is
 * allowed, as in a URL path). Unknown names are a usage error listing what exists.
 */
export function findMethod(name: string): DescMethod {
  const match = /^\/?([A-Za-z0-9_.]+)\/([A-Za-z0-9_]+)$/.exec(name);
  if (!match) throw new UsageError(`"${name}" is not a method: write Service/Method, such as rivulet.chat.v1.ChatService/Send or ChatService/Send`);
  const [, serviceName, methodName] = match as unknown as [string, string, string];
  const service = services.find((s) => s.typeName === serviceName || s.name === serviceName);
  if (!service) throw new UsageError(`no service "${serviceName}"; the services are ${services.map((s) => s.typeName).join(", ")}`);
  const method = service.methods.find((m) => m.name === methodName);
  if (!method) throw new UsageError(`${service.typeName} has no method "${methodName}"; it has ${service.methods.map((m) => m.name).join(", ")}`);
  return method;
}

/** A request from the command line's JSON (proto3 JSON, as Connect speaks it); `{}` when none is given. */
export function requestFromJson(method: DescMethod, text: string | undefined): Message {
  let value: JsonValue;
  try {
    value = JSON.parse(text ?? "{}") as JsonValue;
  } catch (error) {
    throw new UsageError(`the request is not JSON (${(error as Error).message}); quote it, such as '{"room":"lobby"}'`);
  }
  try {
    return fromJson(method.input as DescMessage, value, { registry });
  } catch (error) {
    throw new UsageError(`the request is not a ${method.input.typeName}: ${(error as Error).message}`);
  }
}

/** A response as one line of proto3 JSON (fields at their defaults left out, as the server's Connect JSON does). */
export function responseLine(schema: DescMessage, message: Message): string {
  return `${JSON.stringify(toJson(schema, message, { registry }))}\n`;
}
