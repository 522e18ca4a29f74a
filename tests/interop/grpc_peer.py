"""A gRPC client others wrote (Python grpcio) against echo-server: every
call shape of grpc.testing.TestService with gRPC's interop behaviours,
fortio's Ping, health Check and Watch with a flip over HTTP, and server
reflection. Prints "ok" when every check held; the first failed check
raises, with what was expected.

usage: grpc_peer.py HOST:PORT PROTO_DIR HTTP_BASE [ROOT_CERT_PEM]

The messages are built from the server's own .proto files (compiled with
grpc_tools, the protoc of grpcio-tools) through a descriptor set, so no
generated module is imported: the package grpc.testing would clash with
grpcio's own grpc package.
"""

import subprocess
import sys
import tempfile
import time
import urllib.request

import grpc
from google.protobuf import descriptor_pb2, message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

target, proto_dir, http_base = sys.argv[1:4]
root = open(sys.argv[4], "rb").read() if len(sys.argv) > 4 else None

with tempfile.NamedTemporaryFile(suffix=".pb") as out:
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "-I" + proto_dir,
         "--include_imports", "--descriptor_set_out=" + out.name,
         "grpc/testing/test.proto", "fgrpc/ping.proto"],
        check=True,
    )
    fds = descriptor_pb2.FileDescriptorSet.FromString(out.read())
M = message_factory.GetMessages(list(fds.file))
Empty = M["grpc.testing.Empty"]
SimpleRequest = M["grpc.testing.SimpleRequest"]
Payload = M["grpc.testing.Payload"]
EchoStatus = M["grpc.testing.EchoStatus"]
OutReq = M["grpc.testing.StreamingOutputCallRequest"]
Params = M["grpc.testing.ResponseParameters"]
InReq = M["grpc.testing.StreamingInputCallRequest"]
Ping = M["fgrpc.PingMessage"]

if root is None:
    channel = grpc.insecure_channel(target)
else:
    creds = grpc.ssl_channel_credentials(root_certificates=root)
    channel = grpc.secure_channel(
        target, creds, options=[("grpc.ssl_target_name_override", "localhost")])


def method(kind, name, req, resp):
    svc, m = name.rsplit("/", 1)
    full = "/" + svc + "/" + m
    make = getattr(channel, kind)
    return make(full, request_serializer=req.SerializeToString,
                response_deserializer=M[resp].FromString)


T = "grpc.testing.TestService/"
empty = method("unary_unary", T + "EmptyCall", Empty, "grpc.testing.Empty")
unary = method("unary_unary", T + "UnaryCall", SimpleRequest, "grpc.testing.SimpleResponse")
out_call = method("unary_stream", T + "StreamingOutputCall", OutReq,
                  "grpc.testing.StreamingOutputCallResponse")
in_call = method("stream_unary", T + "StreamingInputCall", InReq,
                 "grpc.testing.StreamingInputCallResponse")
full = method("stream_stream", T + "FullDuplexCall", OutReq,
              "grpc.testing.StreamingOutputCallResponse")
half = method("stream_stream", T + "HalfDuplexCall", OutReq,
              "grpc.testing.StreamingOutputCallResponse")
unimpl = method("unary_unary", T + "UnimplementedCall", Empty, "grpc.testing.Empty")
nowhere = method("unary_unary", "grpc.testing.NoSuchService/Call", Empty, "grpc.testing.Empty")
ping = method("unary_unary", "fgrpc.PingServer/Ping", Ping, "fgrpc.PingMessage")


def expect_status(code, call, *args, **kw):
    try:
        call(*args, **kw)
    except grpc.RpcError as e:
        assert e.code() == code, (e.code(), e.details(), "wanted", code)
        return e
    raise AssertionError("no error: wanted %s" % code)


# empty_unary, large_unary (sizes from gRPC's interop descriptions).
assert empty(Empty(), timeout=10) == Empty()
r = unary(SimpleRequest(response_size=314159, payload=Payload(body=bytes(271828))), timeout=10)
assert r.payload.body == bytes(314159), len(r.payload.body)

# custom_metadata: initial and trailing metadata echoed.
r, call = unary.with_call(
    SimpleRequest(response_size=1, fill_server_id=True),
    metadata=[("x-grpc-test-echo-initial", "test_initial_metadata_value"),
              ("x-grpc-test-echo-trailing-bin", b"\x0a\x0b\x0a\x0b\x0a\x0b")],
    timeout=10)
assert ("x-grpc-test-echo-initial", "test_initial_metadata_value") in \
    [(m.key, m.value) for m in call.initial_metadata()], call.initial_metadata()
assert ("x-grpc-test-echo-trailing-bin", b"\x0a\x0b\x0a\x0b\x0a\x0b") in \
    [(m.key, m.value) for m in call.trailing_metadata()], call.trailing_metadata()
# fill_server_id: the server's --name and the shard that answered.
assert r.server_id.startswith("grpc-peer-test/"), r.server_id
assert r.hostname == "grpc-peer-test", r.hostname

# status_code_and_message, special_status_message.
msg = "\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \U0001f608\t\n"
e = expect_status(grpc.StatusCode.UNKNOWN, unary,
                  SimpleRequest(response_status=EchoStatus(code=2, message=msg)), timeout=10)
assert e.details() == msg, repr(e.details())
e = expect_status(grpc.StatusCode.UNKNOWN, lambda: list(full(iter(
    [OutReq(response_status=EchoStatus(code=2, message="test status message"))]), timeout=10)))
assert e.details() == "test status message", e.details()

# server_streaming, with interval_us between answers.
sizes = [31415, 9, 2653, 58979]
start = time.monotonic()
got = [len(x.payload.body) for x in out_call(OutReq(
    response_parameters=[Params(size=s, interval_us=20000) for s in sizes]), timeout=10)]
assert got == sizes, got
assert time.monotonic() - start >= 0.08, "interval_us was not waited"

# client_streaming.
r = in_call(iter([InReq(payload=Payload(body=bytes(n))) for n in [27182, 8, 1828, 45904]]),
            timeout=10)
assert r.aggregated_payload_size == 74922, r.aggregated_payload_size

# ping_pong: each answer before the next request.
sizes, reqs = [31415, 9, 2653, 58979], [27182, 8, 1828, 45904]
import queue
q = queue.Queue()
answers = full(iter(q.get, None), timeout=10)
for size, body in zip(sizes, reqs):
    q.put(OutReq(response_parameters=[Params(size=size)], payload=Payload(body=bytes(body))))
    a = next(answers)
    assert a.payload.body == bytes(size), len(a.payload.body)
q.put(None)
assert list(answers) == []

# half duplex: all requests, then all answers.
got = [len(x.payload.body) for x in half(iter(
    [OutReq(response_parameters=[Params(size=s)]) for s in sizes]), timeout=10)]
assert got == sizes, got

# unimplemented_method, unimplemented_service; a message over the limit.
expect_status(grpc.StatusCode.UNIMPLEMENTED, unimpl, Empty(), timeout=10)
expect_status(grpc.StatusCode.UNIMPLEMENTED, nowhere, Empty(), timeout=10)
expect_status(grpc.StatusCode.RESOURCE_EXHAUSTED, unary,
              SimpleRequest(payload=Payload(body=bytes(2 << 20))), timeout=10)
expect_status(grpc.StatusCode.INVALID_ARGUMENT, unary,
              SimpleRequest(response_size=-1), timeout=10)

# fortio's ping: the message back, after its delay, ts the answer's time.
before = time.time_ns()
r = ping(Ping(seq=42, ts=before, payload="fortio", delayNanos=30_000_000), timeout=10)
assert (r.seq, r.payload, r.delayNanos) == (42, "fortio", 30_000_000), r
assert r.ts >= before + 30_000_000, (r.ts, before)

# health: Check, NOT_FOUND for a stranger, Watch across a flip.
health = health_pb2_grpc.HealthStub(channel)
S = health_pb2.HealthCheckResponse
assert health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10).status == S.SERVING
assert health.Check(health_pb2.HealthCheckRequest(service="grpc.testing.TestService"),
                    timeout=10).status == S.SERVING
expect_status(grpc.StatusCode.NOT_FOUND, health.Check,
              health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=10)
watch = health.Watch(health_pb2.HealthCheckRequest(service=""), timeout=20)
assert next(watch).status == S.SERVING


def post(path):
    req = urllib.request.Request(http_base + path, method="POST", data=b"")
    try:
        return urllib.request.urlopen(req, timeout=10, context=insecure()).read()
    except urllib.error.HTTPError as e:
        return e.read()


def insecure():
    import ssl
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


assert post("/.well-known/echoes/health/not-serving") == b"NOT_SERVING\n"
assert next(watch).status == S.NOT_SERVING
assert health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10).status == \
    S.NOT_SERVING
assert post("/.well-known/echoes/health/serving") == b"SERVING\n"
assert next(watch).status == S.SERVING
watch.cancel()

# reflection: the services, and a file that defines a symbol.
db = ProtoReflectionDescriptorDatabase(channel)
services = set(db.get_services())
for s in ["grpc.testing.TestService", "fgrpc.PingServer", "grpc.health.v1.Health"]:
    assert s in services, services
f = db.FindFileContainingSymbol("grpc.testing.TestService")
assert f.package == "grpc.testing", f.name
print("ok")
