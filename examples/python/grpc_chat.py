"""A chat subscriber over gRPC: sends to a room, follows it until its own message, then resumes after the last cursor.

Run from the repository while `npm start` serves, with Debian's Python
(python3-grpcio, python3-protobuf) and the messages generated as
docs/cross-language.md step 1 says: /usr/bin/python3 examples/python/grpc_chat.py
"""

import os
import urllib.parse
import urllib.request

import grpc
from rivulet.chat.v1 import chat_pb2

server = urllib.parse.urlsplit(os.environ.get("RIVULET_URL", "http://localhost:8080"))
# Development mode mints a token for anyone; see "Credentials" for real ones.
token = urllib.request.urlopen(f"{server.geturl()}/dev/token?user=alice").read().decode()
metadata = (("authorization", f"Bearer {token}"),)

with grpc.insecure_channel(server.netloc) as channel:  # h2c
    send = channel.unary_unary(
        "/rivulet.chat.v1.ChatService/Send",
        request_serializer=chat_pb2.SendRequest.SerializeToString,
        response_deserializer=chat_pb2.SendResponse.FromString,
    )
    subscribe = channel.unary_stream(
        "/rivulet.chat.v1.ChatService/Subscribe",
        request_serializer=chat_pb2.SubscribeRequest.SerializeToString,
        response_deserializer=chat_pb2.SubscribeResponse.FromString,
    )

    stored = send(chat_pb2.SendRequest(room="lobby", text="hello over gRPC"), metadata=metadata).message

    # Recent history, then live messages, until the one just sent.
    stream = subscribe(chat_pb2.SubscribeRequest(room="lobby", history=10), metadata=metadata, timeout=30)
    for response in stream:
        if response.WhichOneof("event") == "gap":
            print("missed messages:", response.gap.reason)
        else:
            print(f"{response.message.author}: {response.message.text}")
        last_cursor = response.cursor  # keep it to resume
        if response.message.id == stored.id:
            stream.cancel()  # Subscribe never ends by itself
            break

    # Later (a new process, after a dropped connection): the cursor resumes exactly after it.
    send(chat_pb2.SendRequest(room="lobby", text="sent after the cursor"), metadata=metadata)
    stream = subscribe(chat_pb2.SubscribeRequest(room="lobby", cursor=last_cursor), metadata=metadata, timeout=30)
    resumed = next(stream)  # the first message after last_cursor
    stream.cancel()
    print("resumed with:", resumed.message.text)
