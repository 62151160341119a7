"""A chat client over Rivulet's WebSocket (GET /ws), written from docs/protocol.md alone.

It sends a message, subscribes and prints the room until its own message,
then, on a new socket, resumes after the last cursor. Run from the repository
while `npm start` serves, with Debian's Python (python3-websockets,
python3-protobuf) and the messages generated as docs/cross-language.md step 1
says: /usr/bin/python3 examples/python/websocket_chat.py
"""

import asyncio
import os
import urllib.request

import websockets  # the asyncio client: Debian 12's websockets 10.4 has no sync one
from rivulet.bridge.v1 import bridge_pb2
from rivulet.chat.v1 import chat_pb2

SEND = "rivulet.chat.v1.ChatService/Send"
SUBSCRIBE = "rivulet.chat.v1.ChatService/Subscribe"

server = os.environ.get("RIVULET_URL", "http://localhost:8080")
# Development mode mints a token for anyone; see "Credentials" for real ones.
token = urllib.request.urlopen(f"{server}/dev/token?user=alice").read().decode()


def call(call_id, method, request):
    """A ClientFrame starting a call: an id of ours, the method's full name, the request's bytes, its headers."""
    frame = bridge_pb2.ClientFrame()
    frame.call.id = call_id
    frame.call.method = method
    frame.call.request = request.SerializeToString()
    frame.call.headers["authorization"] = f"Bearer {token}"
    return frame.SerializeToString()  # sent as one binary WebSocket message


def cancel(call_id):
    frame = bridge_pb2.ClientFrame()
    frame.cancel.id = call_id
    return frame.SerializeToString()


async def answers(socket, call_id):
    """The `message` frames of one call, until its `end`; frames of other calls interleave and are skipped here."""
    async for data in socket:
        frame = bridge_pb2.ServerFrame.FromString(data)
        kind = frame.WhichOneof("kind")
        if kind == "message" and frame.message.id == call_id:
            yield frame.message
        elif kind == "end" and frame.end.id == call_id:
            if frame.end.HasField("error"):  # a Connect code in snake case, e.g. unauthenticated
                raise RuntimeError(f"call {call_id} failed: {frame.end.error.code}: {frame.end.error.message}")
            return


async def send(socket, call_id, text):
    """ChatService.Send, a unary call: one `message` frame (then an `end`)."""
    await socket.send(call(call_id, SEND, chat_pb2.SendRequest(room="lobby", text=text)))
    async for answer in answers(socket, call_id):
        return chat_pb2.SendResponse.FromString(answer.payload).message


def connect():
    url = server.replace("http", "ws", 1) + "/ws"
    return websockets.connect(url, subprotocols=["rivulet.v1"])


async def main():
    async with connect() as socket:
        sent = await send(socket, 1, "hello from Python over WebSocket")
        # Recent history, then live messages. Each frame carries the stream's cursor: keep the last.
        await socket.send(call(2, SUBSCRIBE, chat_pb2.SubscribeRequest(room="lobby", history=10)))
        async for answer in answers(socket, 2):
            response = chat_pb2.SubscribeResponse.FromString(answer.payload)
            if response.WhichOneof("event") == "gap":
                print("missed messages:", response.gap.reason)
            else:
                print(f"{response.message.author}: {response.message.text}")
            cursor = answer.cursor
            if response.message.id == sent.id:
                break
        await socket.send(cancel(2))  # a stream never ends by itself; closing the socket would end it too

    # Later, on a new socket: subscribing with the cursor resumes exactly after it.
    async with connect() as socket:
        await send(socket, 1, "sent after the cursor")
        await socket.send(call(2, SUBSCRIBE, chat_pb2.SubscribeRequest(room="lobby", cursor=cursor)))
        async for answer in answers(socket, 2):
            print("resumed with:", chat_pb2.SubscribeResponse.FromString(answer.payload).message.text)
            break


asyncio.run(main())
