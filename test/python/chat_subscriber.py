#!/usr/bin/python3
"""Subscribes to a Rivulet chat room over gRPC and prints each event as one JSON line.

    chat_subscriber.py --target 127.0.0.1:8080 --token T --room lobby --count 3 [--history 1 | --cursor C]

Output, one line per event, flushed as it arrives:

    {"ready": true}
    {"cursor": "...", "id": "...", "author": "alice", "text": "hi"}
    {"gap": "GAP_REASON_HISTORY_TRIMMED"}

A gRPC server stream confirms nothing before its first message, so "ready"
is printed when the first event arrives. Subscribe with --history 1 to a room
that already holds a message (or with the cursor of an earlier message) and
that replayed event is the signal: the server attaches the live feed before
it replays history, so everything sent after "ready" is delivered.

Exits 0 after --count messages (gaps do not count); on a gRPC error, prints
the status code's name on stderr and exits 1.
"""

import argparse
import json
import sys

import grpc

from rivulet_grpc import SUBSCRIBE, chat_pb2, credentials, exit_on_rpc_error, open_channel
from rivulet.stream.v1 import gap_pb2


def event_line(response):
    """The JSON line of one SubscribeResponse."""
    if response.WhichOneof("event") == "gap":
        return {"gap": gap_pb2.GapReason.Name(response.gap.reason)}
    message = response.message
    return {"cursor": response.cursor, "id": message.id, "author": message.author, "text": message.text}


def positive(text):
    """argparse type: an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, help="host:port of the Rivulet server (h2c)")
    parser.add_argument("--token", required=True, help="bearer token")
    parser.add_argument("--room", required=True)
    parser.add_argument("--count", type=positive, required=True, help="exit after this many messages")
    parser.add_argument("--cursor", default="", help="resume after this cursor")
    parser.add_argument("--history", type=int, default=0, help="without --cursor: replay this many recent messages")
    parser.add_argument("--deadline", type=float, default=None, help="give up after this many seconds")
    args = parser.parse_args()

    request = chat_pb2.SubscribeRequest(room=args.room, cursor=args.cursor, history=args.history)
    with open_channel(args.target) as channel:
        subscribe = channel.unary_stream(
            SUBSCRIBE,
            request_serializer=chat_pb2.SubscribeRequest.SerializeToString,
            response_deserializer=chat_pb2.SubscribeResponse.FromString,
        )
        stream = subscribe(request, metadata=credentials(args.token), timeout=args.deadline)
        ready = False
        received = 0
        try:
            for response in stream:
                if not ready:
                    ready = True
                    print(json.dumps({"ready": True}), flush=True)
                print(json.dumps(event_line(response)), flush=True)
                if response.WhichOneof("event") == "message":
                    received += 1
                    if received == args.count:
                        stream.cancel()
                        return 0
        except grpc.RpcError as error:
            exit_on_rpc_error("Subscribe", error)
    print(f"rivulet: Subscribe ended after {received} of {args.count} messages", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
