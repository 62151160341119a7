// Everything the demo takes from Rivulet's client and schema, in one module:
// today from the repository's sources, later from the @rivulet/client package,
// a switch of this file's import paths only.
export { createSseClient, type SseClient } from "../../src/client/sse.js";
export { createWebSocketTransport, type WebSocketTransport, type WebSocketTransportState } from "../../src/client/websocket-transport.js";
export { ChatService, type ChatMessage, type SubscribeResponse, type WatchPresenceResponse } from "../../gen/rivulet/chat/v1/chat_pb.js";
export { isRoomName, roomNameMax } from "../../src/wire/room-name.js";
