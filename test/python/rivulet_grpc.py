"""What the Rivulet chat scripts share: the generated messages, a channel, credentials, errors.

The messages come from our protos, generated at run time with
``protoc --python_out=DIR -I proto <files>``; put DIR on PYTHONPATH. No gRPC
service stubs are needed: a method is called by its full path with the
message classes' own (de)serializers.
"""

import sys

import grpc

try:
    from rivulet.chat.v1 import chat_pb2
except ImportError as error:  # the generated messages are not on the path
    sys.exit(f"rivulet: cannot import the generated messages ({error}); "
             "run protoc --python_out=DIR -I proto ... and set PYTHONPATH=DIR")

SEND = "/rivulet.chat.v1.ChatService/Send"
SUBSCRIBE = "/rivulet.chat.v1.ChatService/Subscribe"


def open_channel(target):
    """A cleartext HTTP/2 (h2c) channel to host:port, as gRPC clients speak it."""
    return grpc.insecure_channel(target)


def credentials(token):
    """Call metadata carrying the bearer token (gRPC metadata keys are lower case)."""
    return (("authorization", f"Bearer {token}"),)


def exit_on_rpc_error(method, error):
    """Reports a failed call on stderr as `<method> failed: <CODE>: <details>` and exits 1."""
    code = error.code()
    name = code.name if code is not None else "UNKNOWN"
    print(f"rivulet: {method} failed: {name}: {error.details()}", file=sys.stderr, flush=True)
    sys.exit(1)
