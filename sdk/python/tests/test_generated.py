import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.normpath(os.path.join(os.path.dirname(__file__), ".."))


class GeneratedTest(unittest.TestCase):
    def test_the_committed_modules_are_those_of_berth_proto(self):
        try:
            import grpc_tools  # noqa: F401 (python3-grpc-tools)
        except ImportError:
            self.skipTest("python3-grpc-tools is not installed: cannot regenerate")
        with tempfile.TemporaryDirectory() as out:
            subprocess.run(["sh", os.path.join(HERE, "generate.sh"), out], check=True,
                           env=dict(os.environ, PYTHON=sys.executable))
            for name in ("berth_pb2.py", "berth_pb2_grpc.py"):
                with self.subTest(name=name):
                    with open(os.path.join(out, "berth", name), "rb") as f:
                        fresh = f.read()
                    with open(os.path.join(HERE, "berth", name), "rb") as f:
                        committed = f.read()
                    self.assertTrue(fresh == committed,
                                    "berth/%s is out of date with sdk/proto/berth.proto: run sh sdk/python/generate.sh" % name)


if __name__ == "__main__":
    unittest.main()
