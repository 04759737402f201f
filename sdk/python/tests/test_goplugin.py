import base64
import os
import select
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

import berth
from berth import berth_pb2 as pb
from berth import berth_pb2_grpc as pb_grpc
from berth import _goplugin as gp
from berth._server import Servicer

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
PYDEMO = os.path.join(ROOT, "plugins", "pydemo", "pydemo")


class Hold(berth.Job):
    name = "HOLD"

    def run(self, ctx, params):
        ctx.wait(params.get("hold", 0))


def _raw(b):
    return b


def health_check(channel, service):
    call = channel.unary_unary("/grpc.health.v1.Health/Check", request_serializer=_raw, response_deserializer=_raw)
    name = service.encode()
    return call(b"\x0a" + bytes([len(name)]) + name if name else b"", timeout=10)


def tls_channel(address, server_der, client_cert=None, client_key=None):
    creds = grpc.ssl_channel_credentials(root_certificates=ssl.DER_cert_to_PEM_cert(server_der).encode(),
                                         private_key=client_key, certificate_chain=client_cert)
    return grpc.secure_channel("unix:" + address, creds, options=[("grpc.ssl_target_name_override", "localhost")])


class HandshakeTest(unittest.TestCase):
    def test_line(self):
        line = gp.handshake_line(2, "unix", "/tmp/x/plugin.sock", b"\x01\x02\x03\x04")
        self.assertEqual(line, "1|2|unix|/tmp/x/plugin.sock|grpc|AQIDBA")  # base64 without padding
        self.assertEqual(gp.handshake_line(2, "unix", "/s", None), "1|2|unix|/s|grpc|")

    def test_cookie_and_version(self):
        self.assertTrue(gp.has_cookie({gp.MAGIC_COOKIE_KEY: gp.MAGIC_COOKIE_VALUE}))
        self.assertFalse(gp.has_cookie({gp.MAGIC_COOKIE_KEY: "nope"}))
        self.assertFalse(gp.has_cookie({}))
        self.assertEqual(gp.protocol_version({"PLUGIN_PROTOCOL_VERSIONS": "1,2"}), 2)

    def test_certificate_is_what_automtls_expects(self):
        cert_pem, key_pem, der = gp.make_certificate()
        cert = x509.load_der_x509_certificate(der)
        self.assertEqual(cert.public_bytes(serialization.Encoding.PEM), cert_pem)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        self.assertEqual(san.get_values_for_type(x509.DNSName), ["localhost"])
        self.assertTrue(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        self.assertIn(ExtendedKeyUsageOID.SERVER_AUTH, eku)
        self.assertIn(ExtendedKeyUsageOID.CLIENT_AUTH, eku)
        self.assertIn(b"PRIVATE KEY", key_pem)

    def test_health_wire(self):
        self.assertEqual(gp.health_service_of(b""), "")
        self.assertEqual(gp.health_service_of(b"\x0a\x06plugin"), "plugin")
        # Unknown fields of every wire type are skipped.
        self.assertEqual(gp.health_service_of(b"\x10\x96\x01\x19" + b"\0" * 8 + b"\x25" + b"\0" * 4 + b"\x0a\x01x"), "x")
        with self.assertRaises(ValueError):
            gp.health_service_of(b"\x0a\x96")
        self.assertEqual(gp.health_response(1), b"\x08\x01")


class ProcessTest(unittest.TestCase):
    """The gRPC server of a plugin process, in this process, over mTLS."""

    def setUp(self):
        self.client_cert, self.client_key, _ = gp.make_certificate()
        self.servicer = Servicer([Hold()])
        self.proc = gp.Process(self.servicer, self.client_cert.decode())
        self.proc.start()
        self.addCleanup(self.proc.stop)

    def channel(self, with_cert=True):
        ch = tls_channel(self.proc.address, self.proc.cert_der,
                         self.client_cert if with_cert else None, self.client_key if with_cert else None)
        self.addCleanup(ch.close)
        return ch

    def test_plugin_service_over_mtls(self):
        d = pb_grpc.PluginStub(self.channel()).Describe(pb.DescribeRequest(), timeout=10)
        self.assertEqual([j.name for j in d.jobs], ["HOLD"])

    def test_a_client_without_the_hosts_certificate_is_refused(self):
        with self.assertRaises(grpc.RpcError) as e:
            pb_grpc.PluginStub(self.channel(with_cert=False)).Describe(pb.DescribeRequest(), timeout=5)
        self.assertEqual(e.exception.code(), grpc.StatusCode.UNAVAILABLE)

    def test_a_client_with_another_certificate_is_refused(self):
        other_cert, other_key, _ = gp.make_certificate()
        ch = tls_channel(self.proc.address, self.proc.cert_der, other_cert, other_key)
        self.addCleanup(ch.close)
        with self.assertRaises(grpc.RpcError):
            pb_grpc.PluginStub(ch).Describe(pb.DescribeRequest(), timeout=5)

    def test_health_serves_plugin(self):
        ch = self.channel()
        self.assertEqual(health_check(ch, "plugin"), b"\x08\x01")
        self.assertEqual(health_check(ch, ""), b"\x08\x01")
        with self.assertRaises(grpc.RpcError) as e:
            health_check(ch, "other")
        self.assertEqual(e.exception.code(), grpc.StatusCode.NOT_FOUND)

    def test_controller_shutdown_asks_the_process_to_end(self):
        call = self.channel().unary_unary("/plugin.GRPCController/Shutdown", request_serializer=_raw,
                                          response_deserializer=_raw)
        self.assertEqual(call(b"", timeout=10), b"")
        self.assertTrue(self.proc.shutdown.wait(5))

    def test_session_runs_a_job(self):
        stub = pb_grpc.PluginStub(self.channel())
        sent = [pb.HostMessage(start=pb.Start(job_id="j1", job_name="HOLD", parameters=b'{"hold": 3600}'))]
        got = threading.Event()
        ready = threading.Event()

        def requests():
            yield sent[0]
            ready.wait(10)
            yield pb.HostMessage(stop=pb.Stop(job_id="j1", reason=pb.STOP_REASON_STOP))
            got.wait(10)

        ready.set()
        for m in stub.Session(requests(), timeout=10):
            if m.WhichOneof("msg") == "outcome":
                self.assertEqual((m.outcome.job_id, m.outcome.kind), ("j1", pb.Outcome.KIND_ERROR))
                self.assertEqual(m.outcome.error, "the job was asked to stop")
                got.set()
                break
        self.assertTrue(got.is_set())


    def test_a_frozen_host_ends_every_run(self):
        # The host's parent watch calls abandon_all once the host has been
        # stopped too long: a held run ends at once, saying why.
        stub = pb_grpc.PluginStub(self.channel())
        started = threading.Event()
        done = threading.Event()

        def requests():
            yield pb.HostMessage(start=pb.Start(job_id="f1", job_name="HOLD", parameters=b'{"hold": 3600}'))
            done.wait(10)

        def freeze_when_running():
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not started.is_set():
                for s in list(self.servicer._sessions):
                    if "f1" in s.running():
                        started.set()
                time.sleep(0.01)
            self.servicer.abandon_all(berth.HOST_FROZEN)
        threading.Thread(target=freeze_when_running, daemon=True).start()
        outcome = None
        for m in stub.Session(requests(), timeout=10):
            if m.WhichOneof("msg") == "outcome":
                outcome = m.outcome
                done.set()
                break
        self.assertTrue(started.is_set())
        self.assertIsNotNone(outcome)
        self.assertIn("the host is frozen", outcome.error)


class FreezeTest(unittest.TestCase):
    def test_a_stopped_process_is_seen(self):
        p = subprocess.Popen(["sleep", "60"])
        try:
            self.assertFalse(gp.process_stopped(p.pid))
            os.kill(p.pid, 19)  # SIGSTOP
            deadline = time.monotonic() + 5
            while not gp.process_stopped(p.pid):
                self.assertLess(time.monotonic(), deadline, "a stopped process is not seen stopped")
                time.sleep(0.005)
            os.kill(p.pid, 18)  # SIGCONT
            while gp.process_stopped(p.pid):
                self.assertLess(time.monotonic(), deadline + 5, "a continued process is still seen stopped")
                time.sleep(0.005)
        finally:
            p.kill()
            p.wait()

    def test_it_fires_once_per_stop(self):
        f = gp.Freeze(3)
        steps = [(False, 0, False), (True, 1, False), (True, 3, False), (True, 4, True), (True, 10, False),
                 (False, 11, False), (True, 12, False), (True, 15, True)]
        for i, (stopped, at, fire) in enumerate(steps):
            self.assertEqual(f.observe(stopped, 1000 + at), fire, "step %d" % i)


class PluginProcessTest(unittest.TestCase):
    """The real pydemo executable."""

    def env(self, **extra):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PLUGIN_", "BERTH_"))}
        env.update(extra)
        return env

    def start(self, env):
        p = subprocess.Popen([PYDEMO], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(self.reap, p)
        return p

    def reap(self, p):
        if p.poll() is None:
            p.kill()
        p.wait(10)
        p.stdout.close()
        p.stderr.close()

    def first_line(self, p, timeout=20):
        ready, _, _ = select.select([p.stdout], [], [], timeout)
        self.assertTrue(ready, "no line on stdout within %ds; stderr: %r" % (timeout, p.stderr.read1() if p.poll() is not None else b""))
        return p.stdout.readline().decode().rstrip("\n")

    def test_without_the_cookie_it_says_what_it_is(self):
        r = subprocess.run([PYDEMO], env=self.env(), capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"is a Berth job plugin", r.stderr)
        self.assertEqual(r.stdout, b"")

    def test_handshake_tls_and_shutdown(self):
        client_cert, client_key, _ = gp.make_certificate()
        with tempfile.TemporaryDirectory() as sockets:
            p = self.start(self.env(**{gp.MAGIC_COOKIE_KEY: gp.MAGIC_COOKIE_VALUE, "PLUGIN_PROTOCOL_VERSIONS": "2",
                                       "PLUGIN_CLIENT_CERT": client_cert.decode(), "PLUGIN_UNIX_SOCKET_DIR": sockets}))
            parts = self.first_line(p).split("|")
            self.assertEqual(parts[:3] + [parts[4]], ["1", "2", "unix", "grpc"], parts)
            self.assertTrue(parts[3].startswith(sockets + os.sep), parts[3])
            der = base64.b64decode(parts[5] + "=" * (-len(parts[5]) % 4))
            ch = tls_channel(parts[3], der, client_cert, client_key)
            self.addCleanup(ch.close)
            d = pb_grpc.PluginStub(ch).Describe(pb.DescribeRequest(), timeout=10)
            self.assertEqual([j.name for j in d.jobs], ["PYDEMO"])
            self.assertEqual(health_check(ch, "plugin"), b"\x08\x01")
            start = time.monotonic()
            ch.unary_unary("/plugin.GRPCController/Shutdown", request_serializer=_raw, response_deserializer=_raw)(b"", timeout=10)
            self.assertEqual(p.wait(5), 0)
            self.assertLess(time.monotonic() - start, 2)
            self.assertFalse(os.path.exists(parts[3]), "the socket was left behind")

    def test_debug_mode_prints_the_reattach_line(self):
        p = self.start(self.env(**{gp.DEBUG_ENV: "1"}))
        line = self.first_line(p)
        self.assertIn("serves in debug mode", line)
        p.stdout.readline()
        reattach = p.stdout.readline().decode().strip()
        self.assertTrue(reattach.startswith(gp.REATTACH_ENV + "='{\"pydemo\": {\"protocol\": \"grpc\""), reattach)
        self.assertIn('"pid": %d' % p.pid, reattach)

    def test_it_exits_when_its_parent_is_gone(self):
        # A parent that starts pydemo and dies at once: pydemo is re-parented
        # and must exit by itself.
        client_cert, _, _ = gp.make_certificate()
        code = ("import os, subprocess, sys; p = subprocess.Popen([sys.argv[1]], stdout=subprocess.PIPE); "
                "print(p.pid, flush=True); p.stdout.readline(); os._exit(0)")
        env = self.env(**{gp.MAGIC_COOKIE_KEY: gp.MAGIC_COOKIE_VALUE, "PLUGIN_CLIENT_CERT": client_cert.decode()})
        r = subprocess.run([sys.executable, "-c", code, PYDEMO], env=env, capture_output=True, timeout=30)
        pid = int(r.stdout.split()[0])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        os.kill(pid, 9)
        self.fail("pydemo %d outlived its parent by 10s" % pid)


if __name__ == "__main__":
    unittest.main()
