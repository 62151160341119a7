/** rivulet.chat.v1: ChatService, its messages (ChatMessage, SubscribeRequestSchema, …) and their schemas. */
export * from "../../../gen/rivulet/chat/v1/chat_pb.js";
