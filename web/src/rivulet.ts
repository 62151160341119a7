// Everything the demo takes from Rivulet's client and schema, in one module,
// from the @rivulet/client package (packages/client, linked as a workspace):
// the demo uses the client as any application would.
export {
  ChatService,
  NotificationService,
  ProgressService,
  createIndexedDbOutbox,
  createSseTransport,
  createWebSocketTransport,
  retryableCodes,
  type WebSocketTransport,
  type WebSocketTransportState,
  type WebSocketTransportStateDetail,
} from "@rivulet/client";
export type { ChatMessage, CompleteResponse, SubscribeResponse, WatchPresenceResponse } from "@rivulet/client/chat";
export type { Notification, SubscribeResponse as NotificationsResponse } from "@rivulet/client/notify";
export { JobState, type Job, type WatchResponse } from "@rivulet/client/progress";
