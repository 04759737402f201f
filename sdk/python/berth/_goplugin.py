"""go-plugin's side of a plugin process: the handshake, AutoMTLS, the
health and controller services, and the process's life.

The host starts the plugin with hashicorp/go-plugin's conventions
(docs/plugin-protocol.md, part 1): a magic cookie in the environment, the
protocol versions it speaks, and its TLS client certificate. The plugin
serves gRPC over TLS on a unix socket and prints one handshake line.
"""

import base64
import datetime
import os
import shutil
import sys
import tempfile
import threading
import time
from concurrent import futures

import grpc

from berth import berth_pb2_grpc as pb_grpc
from berth._context import HOST_FROZEN

MAGIC_COOKIE_KEY = "BERTH_PLUGIN_MAGIC_COOKIE"
MAGIC_COOKIE_VALUE = "0c7c5b3e7a3d4f5bb1c58c1f5e2f4d9a-berth-job-plugin"
CORE_PROTOCOL_VERSION = 1
PROTOCOL_VERSION = 2
DEBUG_ENV = "BERTH_PLUGIN_DEBUG"
REATTACH_ENV = "BERTH_PLUGIN_REATTACH"
MAX_MESSAGE_SIZE = 64 << 20
PARENT_CHECK_SECONDS = 0.25
HEALTH_SERVICE = "plugin"  # the name go-plugin's health service answers for

# gRPC health v1 (grpc.health.v1.Health/Check) serving status.
_SERVING = 1


def has_cookie(env):
    return env.get(MAGIC_COOKIE_KEY) == MAGIC_COOKIE_VALUE


def protocol_version(env):
    """The app protocol version to answer (PLUGIN_PROTOCOL_VERSIONS lists
    the host's): the highest one this sdk speaks, which is 2. As go-plugin
    does, a host that does not offer it gets 2 anyway and refuses the
    plugin, naming the file."""
    return PROTOCOL_VERSION


def handshake_line(version, network, address, cert_der):
    """go-plugin's line: core version, app version, network, address,
    protocol and the server certificate (DER, base64 without padding)."""
    cert = base64.b64encode(cert_der).decode().rstrip("=") if cert_der else ""
    return "%d|%d|%s|%s|grpc|%s" % (CORE_PROTOCOL_VERSION, version, network, address, cert)


def make_certificate():
    """A self-signed certificate for the DNS name localhost, as go-plugin's
    AutoMTLS expects from a plugin: (cert PEM, key PEM, cert DER)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Berth plugin")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(seconds=30))
        .not_valid_after(now + datetime.timedelta(days=365 * 30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True, key_agreement=True,
                                     key_cert_sign=True, content_commitment=False, data_encipherment=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert_pem, key_pem, cert.public_bytes(serialization.Encoding.DER)


# --- the few messages of go-plugin's own services, on the wire

def _varint(b, i):
    shift = result = 0
    while True:
        if i >= len(b):
            raise ValueError("truncated varint")
        c = b[i]
        i += 1
        result |= (c & 0x7F) << shift
        if not c & 0x80:
            return result, i
        shift += 7


def health_service_of(raw):
    """The service name of a HealthCheckRequest (field 1, a string)."""
    i, service = 0, ""
    while i < len(raw):
        tag, i = _varint(raw, i)
        field, wire = tag >> 3, tag & 7
        if wire == 0:
            _, i = _varint(raw, i)
        elif wire == 2:
            n, i = _varint(raw, i)
            if field == 1:
                service = raw[i:i + n].decode()
            i += n
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        else:
            raise ValueError("unexpected wire type %d" % wire)
    return service


def health_response(status):
    """A HealthCheckResponse with status (field 1, an enum)."""
    return bytes([0x08, status])


def _raw(b):
    return b


class Process:
    """The gRPC server of a plugin process, with go-plugin's services:
    the Plugin service, gRPC health (SERVING for "plugin") and
    GRPCController (Shutdown ends the process). GRPCStdio and the broker
    are not served: the host reads stderr itself, and protocol 2 has no
    broker."""

    def __init__(self, servicer, client_cert_pem=None, socket_dir=None):
        self.servicer = servicer
        self.shutdown = threading.Event()
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=32, thread_name_prefix="berth-grpc"),
            options=[("grpc.max_receive_message_length", MAX_MESSAGE_SIZE),
                     ("grpc.max_send_message_length", MAX_MESSAGE_SIZE)])
        pb_grpc.add_PluginServicer_to_server(servicer, self.server)
        self.server.add_generic_rpc_handlers([
            grpc.method_handlers_generic_handler("grpc.health.v1.Health", {
                "Check": grpc.unary_unary_rpc_method_handler(
                    self._check, request_deserializer=_raw, response_serializer=_raw)}),
            grpc.method_handlers_generic_handler("plugin.GRPCController", {
                "Shutdown": grpc.unary_unary_rpc_method_handler(
                    self._shutdown, request_deserializer=_raw, response_serializer=_raw)}),
        ])
        self.dir = tempfile.mkdtemp(prefix="berth-plugin-", dir=socket_dir or None)
        self.address = os.path.join(self.dir, "plugin.sock")
        self.cert_der = None
        if client_cert_pem:
            cert_pem, key_pem, self.cert_der = make_certificate()
            creds = grpc.ssl_server_credentials([(key_pem, cert_pem)], root_certificates=client_cert_pem.encode(),
                                                require_client_auth=True)
            port = self.server.add_secure_port("unix:" + self.address, creds)
        else:
            port = self.server.add_insecure_port("unix:" + self.address)
        if not port:
            raise RuntimeError("berth: cannot listen on unix socket %s" % self.address)

    def _check(self, raw, context):
        try:
            service = health_service_of(raw)
        except ValueError as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        if service not in ("", HEALTH_SERVICE):
            context.abort(grpc.StatusCode.NOT_FOUND, "unknown service %r" % service)
        return health_response(_SERVING)

    def _shutdown(self, raw, context):
        # Answered first: the process ends right after.
        self.shutdown.set()
        return b""

    def start(self):
        self.server.start()

    def stop(self, grace=0.5):
        self.server.stop(grace).wait(grace + 5)
        shutil.rmtree(self.dir, ignore_errors=True)


# How long the host may be stopped (SIGSTOP) before the plugin gives up
# its runs: the Go sdk's FrozenHostAfter, well under the shortest lease.
FROZEN_HOST_SECONDS = 3.0


def process_stopped(pid):
    """Whether process pid is stopped (state T or t in /proc); False where
    it cannot be read."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read()
    except OSError:
        return False
    i = data.rfind(b")")  # the command name may hold spaces and parentheses
    if i < 0 or i + 2 >= len(data):
        return False
    return data[i + 2:i + 3] in (b"T", b"t")


class Freeze:
    """Tells, from a process's state seen over time, when it has been
    stopped for `after` seconds: once per stop."""

    def __init__(self, after):
        self.after, self.since, self.fired = after, None, False

    def observe(self, stopped, now):
        if not stopped:
            self.since, self.fired = None, False
            return False
        if self.since is None:
            self.since = now
        if not self.fired and now - self.since >= self.after:
            self.fired = True
            return True
        return False


def serve_process(servicer, env=None, out=None):
    """Serves the plugin until the host lets it go, then exits the process:
    what berth.serve does. Never returns."""
    # The parent, first: it may go right after it read the handshake.
    ppid = os.getppid()
    env = os.environ if env is None else env
    out = sys.stdout if out is None else out
    debug = env.get(DEBUG_ENV) == "1"
    if not debug and not has_cookie(env):
        name = os.path.basename(sys.argv[0] or "this program")
        sys.stderr.write("%s is a Berth job plugin: the Berth host starts it from its plugins directory; "
                         "it is not meant to be run by hand (to debug it, start it with %s=1)\n" % (name, DEBUG_ENV))
        sys.exit(1)
    version = protocol_version(env)
    proc = Process(servicer, None if debug else env.get("PLUGIN_CLIENT_CERT"), env.get("PLUGIN_UNIX_SOCKET_DIR"))
    proc.start()
    if debug:
        import json
        name = os.path.basename(sys.argv[0] or "plugin")
        line = json.dumps({name: {"protocol": "grpc", "protocol_version": version, "network": "unix",
                                  "address": proc.address, "pid": os.getpid()}})
        out.write("berth plugin %s serves in debug mode; start the host with:\n\n\t%s='%s'\n\n"
                  % (sys.argv[0], REATTACH_ENV, line))
    else:
        out.write(handshake_line(version, "unix", proc.address, proc.cert_der) + "\n")
    out.flush()
    # stdout stays open (go-plugin reads it); what the job prints goes to
    # stderr, which the host logs line by line.
    sys.stdout = sys.stderr
    code = 0
    frozen = Freeze(FROZEN_HOST_SECONDS)
    try:
        while not proc.shutdown.wait(PARENT_CHECK_SECONDS):
            if debug:
                continue
            if os.getppid() != ppid:
                sys.stderr.write("berth plugin %s: host process is gone, exiting\n" % sys.argv[0])
                code = 2
                break
            if frozen.observe(process_stopped(ppid), time.monotonic()):
                # A frozen host renews no lease: another host is about to
                # run these jobs, and a run must not outlive its lease.
                sys.stderr.write("berth plugin %s: host process is frozen; giving up its runs\n" % sys.argv[0])
                abandon = getattr(servicer, "abandon_all", None)
                if abandon is not None:
                    abandon(HOST_FROZEN)
    except KeyboardInterrupt:
        pass
    proc.stop()
    sys.stderr.flush()
    # Run threads left behind must not keep the process: the host waits
    # for its exit.
    os._exit(code)
