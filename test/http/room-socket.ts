import { create, fromBinary, toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import WebSocket from "ws";
import { ClientFrameSchema, ServerFrameSchema } from "../../gen/rivulet/bridge/v1/bridge_pb.js";
import {
  SendRequestSchema,
  SubscribeRequestSchema,
  SubscribeResponseSchema,
  WatchPresenceRequestSchema,
  WatchPresenceResponseSchema,
} from "../../gen/rivulet/chat/v1/chat_pb.js";

/**
 * A raw rivulet.v1 WebSocket on `/ws` (the `ws` package, binary frames), for
 * the connection-limit suites: every call they need rides the one connection,
 * so a test holds exactly one connection per socket and none besides.
 */
export interface RoomSocket {
  /** Texts of the room's messages received since `subscribe`, in order. */
  readonly texts: readonly string[];
  /** Subscribes to `room`, from its last `history` messages. */
  subscribe(room: string, history: number): void;
  /** Resolves once `text` was received from the room. */
  received(text: string): Promise<void>;
  /** Sends `text` to `room` (ChatService/Send on this socket); resolves when the call ended without error. */
  send(room: string, text: string): Promise<void>;
  /** Watches `room`'s members (ChatService/WatchPresence); resolves once `userId` has left it. */
  untilLeft(room: string, userId: string): Promise<void>;
  /** Closes the socket (close code 1000); resolves once closed. */
  close(): Promise<void>;
}

/** What a connection attempt observed: opened, or closed without opening (and the error `ws` reported, and the close code). */
export type Connection =
  { readonly opened: true; readonly socket: RoomSocket } | { readonly opened: false; readonly error: string; readonly closeCode: number };

/** Opens a WebSocket to `baseUrl` as the bearer of `token`; resolves once it opened or closed. */
export function connectRoomSocket(baseUrl: string, token: string): Promise<Connection> {
  const ws = new WebSocket(`${baseUrl.replace(/^http/, "ws")}/ws`, ["rivulet.v1"], { headers: { authorization: `Bearer ${token}` }, perMessageDeflate: false });
  ws.binaryType = "nodebuffer";
  const texts: string[] = [];
  /** Each call's listener for its frames, by call id. */
  const calls = new Map<number, (frame: ReturnType<typeof fromBinary<typeof ServerFrameSchema>>) => void>();
  const changed = new Set<() => void>();
  let nextId = 1;
  ws.on("message", (data: Buffer) => {
    const frame = fromBinary(ServerFrameSchema, data);
    if (frame.kind.case === "message" || frame.kind.case === "end") calls.get(frame.kind.value.id)?.(frame);
  });
  const call = <I extends DescMessage>(
    method: string,
    schema: I,
    request: MessageShape<I>,
    onFrame: (frame: ReturnType<typeof fromBinary<typeof ServerFrameSchema>>) => void,
  ) => {
    const id = nextId++;
    calls.set(id, onFrame);
    ws.send(toBinary(ClientFrameSchema, create(ClientFrameSchema, { kind: { case: "call", value: { id, method, request: toBinary(schema, request) } } })));
  };
  const socket: RoomSocket = {
    texts,
    subscribe(room, history) {
      call("rivulet.chat.v1.ChatService/Subscribe", SubscribeRequestSchema, create(SubscribeRequestSchema, { room, history }), (frame) => {
        if (frame.kind.case !== "message") return; // ended: `received` then waits for what never comes, and the test says which
        const event = fromBinary(SubscribeResponseSchema, frame.kind.value.payload).event;
        if (event.case === "message") texts.push(event.value.text);
        for (const check of changed) check();
      });
    },
    received(text) {
      return new Promise((resolve) => {
        const check = () => {
          if (!texts.includes(text)) return;
          changed.delete(check);
          resolve();
        };
        changed.add(check);
        check();
      });
    },
    send(room, text) {
      return new Promise((resolve, reject) => {
        call("rivulet.chat.v1.ChatService/Send", SendRequestSchema, create(SendRequestSchema, { room, text }), (frame) => {
          if (frame.kind.case !== "end") return;
          const error = frame.kind.value.error;
          if (error) reject(new Error(`Send: ${error.code}: ${error.message}`));
          else resolve();
        });
      });
    },
    untilLeft(room, userId) {
      return new Promise((resolve) => {
        let first = true;
        call("rivulet.chat.v1.ChatService/WatchPresence", WatchPresenceRequestSchema, create(WatchPresenceRequestSchema, { room }), (frame) => {
          if (frame.kind.case !== "message") return;
          const change = fromBinary(WatchPresenceResponseSchema, frame.kind.value.payload);
          // The first response lists the members: one already gone is not among them.
          if (first ? !change.members.includes(userId) : change.left.includes(userId)) resolve();
          first = false;
        });
      });
    },
    close() {
      if (ws.readyState === WebSocket.CLOSED) return Promise.resolve();
      return new Promise((resolve) => {
        ws.once("close", () => resolve());
        ws.close(1000);
      });
    },
  };
  return new Promise((resolve) => {
    let error = "";
    ws.once("error", (cause) => (error = cause.message));
    ws.once("open", () => resolve({ opened: true, socket }));
    ws.once("close", (closeCode) => resolve({ opened: false, error, closeCode }));
  });
}
