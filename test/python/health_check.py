#!/usr/bin/python3
"""Checks or watches a gRPC server's health (grpc.health.v1.Health) and prints each status as one JSON line.

    health_check.py --target 127.0.0.1:8080 [--service rivulet.chat.v1.ChatService] [--watch 3]

Without --watch: one Check, printed as {"status": "SERVING"}. With --watch N:
Watch, printing each status as it arrives, and exit 0 after N of them. No
credentials are sent: health asks for none, as gRPC probes expect.

On a gRPC error, prints the status code's name on stderr and exits 1 (an
unknown service fails Check with NOT_FOUND).
"""

import argparse
import importlib.util
import json
import os
import sys

import grpc

from rivulet_grpc import exit_on_rpc_error, open_channel

CHECK = "/grpc.health.v1.Health/Check"
WATCH = "/grpc.health.v1.Health/Watch"


def load_health_messages():
    """The module protoc generated from grpc/health/v1/health.proto, loaded from its file.

    It lands on PYTHONPATH as grpc/health/v1/health_pb2.py, but `import
    grpc.health...` looks inside the installed grpcio package (a regular
    package named grpc shadows the generated directory), so it is loaded by path.
    """
    for root in sys.path:
        path = os.path.join(root or ".", "grpc", "health", "v1", "health_pb2.py")
        if os.path.isfile(path):
            spec = importlib.util.spec_from_file_location("health_pb2", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
    sys.exit("rivulet: grpc/health/v1/health_pb2.py is not on the path; run protoc --python_out=DIR and set PYTHONPATH=DIR")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, help="host:port of the Rivulet server (h2c)")
    parser.add_argument("--service", default="", help='a full service name; "" (the default) is the whole server')
    parser.add_argument("--watch", type=int, default=0, help="watch, and exit after this many statuses")
    parser.add_argument("--deadline", type=float, default=None, help="give up after this many seconds")
    args = parser.parse_args()

    health_pb2 = load_health_messages()
    status_name = health_pb2.HealthCheckResponse.ServingStatus.Name
    request = health_pb2.HealthCheckRequest(service=args.service)
    serializers = {
        "request_serializer": health_pb2.HealthCheckRequest.SerializeToString,
        "response_deserializer": health_pb2.HealthCheckResponse.FromString,
    }
    with open_channel(args.target) as channel:
        if args.watch < 1:
            try:
                response = channel.unary_unary(CHECK, **serializers)(request, timeout=args.deadline)
            except grpc.RpcError as error:
                exit_on_rpc_error("Check", error)
            print(json.dumps({"status": status_name(response.status)}), flush=True)
            return 0
        stream = channel.unary_stream(WATCH, **serializers)(request, timeout=args.deadline)
        received = 0
        try:
            for response in stream:
                print(json.dumps({"status": status_name(response.status)}), flush=True)
                received += 1
                if received == args.watch:
                    stream.cancel()
                    return 0
        except grpc.RpcError as error:
            exit_on_rpc_error("Watch", error)
    print(f"rivulet: Watch ended after {received} of {args.watch} statuses", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
