#!/usr/bin/python3
"""Sends one message to a Rivulet chat room over gRPC (unary Send) and prints it as stored.

    chat_sender.py --target 127.0.0.1:8080 --token T --room lobby --text "hello" [--idempotency-key K]

Prints one JSON line, {"cursor": ..., "id": ..., "author": ..., "text": ...},
and exits 0; on a gRPC error, prints the status code's name on stderr and
exits 1.
"""

import argparse
import json
import sys

import grpc

from rivulet_grpc import SEND, chat_pb2, credentials, exit_on_rpc_error, open_channel


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, help="host:port of the Rivulet server (h2c)")
    parser.add_argument("--token", required=True, help="bearer token")
    parser.add_argument("--room", required=True)
    parser.add_argument("--text", required=True)
    parser.add_argument("--idempotency-key", default="", help="makes a retried send return the original message")
    parser.add_argument("--deadline", type=float, default=30.0, help="give up after this many seconds")
    args = parser.parse_args()

    request = chat_pb2.SendRequest(room=args.room, text=args.text, idempotency_key=args.idempotency_key)
    with open_channel(args.target) as channel:
        send = channel.unary_unary(
            SEND,
            request_serializer=chat_pb2.SendRequest.SerializeToString,
            response_deserializer=chat_pb2.SendResponse.FromString,
        )
        try:
            response = send(request, metadata=credentials(args.token), timeout=args.deadline)
        except grpc.RpcError as error:
            exit_on_rpc_error("Send", error)
    message = response.message
    print(json.dumps({"cursor": message.cursor, "id": message.id, "author": message.author, "text": message.text}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
