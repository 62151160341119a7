/**
 * `@rivulet/client`: Rivulet's transports for connect-es, and the services
 * they call. Built from the repository's src/client/ (which imports only
 * src/wire/ and gen/, never the server), so the package and the server speak
 * the same wire code. Each service's messages are in its own subpath
 * (`@rivulet/client/chat`, …): their names repeat across services.
 */
export { createWebSocketTransport } from "../../../src/client/websocket-transport.js";
export type {
  WebSocketConstructor,
  WebSocketLike,
  WebSocketTransport,
  WebSocketTransportOptions,
  WebSocketTransportState,
  WebSocketTransportStateDetail,
} from "../../../src/client/websocket-transport.js";
export {
  createIndexedDbOutbox,
  createMemoryOutbox,
  type IndexedDbOutboxOptions,
  type NewOutboxEntry,
  type OutboxEntry,
  type OutboxStore,
} from "../../../src/client/websocket-transport.js";
export { createSseTransport, type SseTransportOptions } from "../../../src/client/sse-transport.js";
export { createSseClient, type SseClient, type SseClientOptions, type SseSubscribeOptions } from "../../../src/client/sse.js";
export type { TokenRequest, TokenSource } from "../../../src/client/token-source.js";
export { isRetryable, retryableCodes } from "../../../src/wire/transient-codes.js";
export type { BackoffOptions } from "../../../src/wire/backoff.js";
export { ChatService } from "../../../gen/rivulet/chat/v1/chat_pb.js";
export { NotificationService } from "../../../gen/rivulet/notify/v1/notify_pb.js";
export { ProgressService } from "../../../gen/rivulet/progress/v1/progress_pb.js";
export { AdminService } from "../../../gen/rivulet/admin/v1/admin_pb.js";
