"""Tests of the PYDEMO job through the sdk's harness (berth.testing):

    /usr/bin/python3 -m unittest discover -s plugins/pydemo
"""

import importlib.machinery
import importlib.util
import os
import time
import unittest

_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pydemo")
_loader = importlib.machinery.SourceFileLoader("pydemo", _PATH)
pydemo = importlib.util.module_from_spec(importlib.util.spec_from_loader("pydemo", _loader))
_loader.exec_module(pydemo)  # finds the sdk as the plugin does

import berth  # noqa: E402
from berth.testing import Harness  # noqa: E402


class PyDemoTest(unittest.TestCase):
    def setUp(self):
        self.h = Harness(pydemo.PyDemo())
        self.addCleanup(self.h.close)

    def test_declares_like_demo(self):
        (j,) = self.h.describe().jobs
        self.assertEqual((j.name, j.max_fails, j.should_retry, j.validates), ("PYDEMO", 3, True, True))
        self.assertIn(b'"required": ["image"]', j.params_schema)

    def test_validate_names_the_image(self):
        self.assertEqual(self.h.validate("PYDEMO", {"image": "demo-1"}), "")
        self.assertEqual(self.h.validate("PYDEMO", {"image": "busybox"}),
                         'parameter "image" must start with "demo", got "busybox"')

    def test_logs_checks_in_and_sets_its_output(self):
        run = self.h.start("PYDEMO", {"image": "demo", "hold_seconds": 0, "log_lines": 2}, attempt=2)
        self.assertEqual(run.outcome(), "success")
        self.assertEqual(run.checkins, pydemo.CHECKINS)
        lines = [m for _, m in run.logs]
        self.assertIn("log line 2 of 2", lines)
        self.assertEqual(run.output, {"image": "demo", "held_seconds": 0, "log_lines": 2, "attempt": 2})

    def test_fail_is_an_error(self):
        run = self.h.start("PYDEMO", {"image": "demo", "fail": True})
        self.assertEqual(run.outcome(), "error")
        self.assertEqual(run.error, "PYDEMO failed as asked (parameter fail=true)")

    def test_a_stop_ends_the_hold_at_once(self):
        run = self.h.start("PYDEMO", {"image": "demo", "hold_seconds": 3600})
        run.wait_checkin(pydemo.CHECKINS[-1])
        start = time.monotonic()
        run.stop(berth.STOP)
        self.assertEqual(run.outcome(), "error")
        self.assertLess(time.monotonic() - start, 1)
        run.wait_log("received op command: stop")


if __name__ == "__main__":
    unittest.main()
