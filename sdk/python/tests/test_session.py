import threading
import time
import unittest

import berth
from berth import berth_pb2 as pb
from berth._context import MAX_BATCH_ENTRIES, MAX_OUTPUT_BYTES, RunContext, _LogMarker
from berth.testing import Harness


class Scripted(berth.Job):
    """Does what its parameters say."""

    name = "SCRIPTED"

    def run(self, ctx, params):
        for line in params.get("lines", []):
            ctx.log.info(line)
        for msg in params.get("checkins", []):
            ctx.checkin(msg)
        if "output" in params:
            ctx.set_output(params["output"])
        if params.get("hold"):
            ended = ctx.wait(params["hold"])
            ctx.log.warning("ended=%s reason=%s", ended, ctx.stop_reason)
            if params.get("succeed_anyway"):
                return
            if ended:
                raise RuntimeError("stopped: %s" % ctx.stop_reason)
        what = params.get("raise")
        if what == "permanent":
            raise berth.Permanent("wrong password")
        if what == "snooze":
            raise berth.Snooze(0.1, "busy")
        if what == "error":
            raise KeyError("boom")
        if what == "empty":
            raise RuntimeError()
        if what == "exit":
            raise SystemExit(3)


class Validating(berth.Job):
    name = "VALIDATING"

    def validate(self, params):
        if params.get("n", 0) > 3:
            raise berth.InvalidParams('parameter "n" must be at most 3, got %d' % params["n"])
        if params.get("bug"):
            raise TypeError("oops")

    def run(self, ctx, params):
        pass


class HarnessCase(unittest.TestCase):
    def setUp(self):
        self.h = Harness(Scripted(), Validating())
        self.addCleanup(self.h.close)


class OutcomeTest(HarnessCase):
    def test_success_carries_the_output(self):
        run = self.h.start("SCRIPTED", {"output": {"n": [1, 2]}})
        self.assertEqual(run.outcome(), "success")
        self.assertEqual(run.output, {"n": [1, 2]})

    def test_success_without_output_has_none(self):
        run = self.h.start("SCRIPTED", {})
        self.assertEqual(run.outcome(), "success")
        self.assertIsNone(run.output)

    def test_exceptions_word_the_outcome(self):
        for what, kind, error in [("permanent", "permanent", "wrong password"),
                                  ("error", "error", "'boom'"),
                                  ("empty", "error", "the job raised RuntimeError with no message"),
                                  ("exit", "error", "run raised SystemExit: 3")]:
            with self.subTest(what=what):
                run = self.h.start("SCRIPTED", {"raise": what})
                self.assertEqual(run.outcome(), kind)
                self.assertEqual(run.error, error)
                self.assertEqual(run.panicked, what == "exit")

    def test_an_error_logs_its_traceback(self):
        run = self.h.start("SCRIPTED", {"raise": "error"})
        run.outcome()
        self.assertTrue(any(level == "error" and "Traceback" in m and "KeyError" in m for level, m in run.logs), run.logs)

    def test_snooze_is_at_least_a_second(self):
        run = self.h.start("SCRIPTED", {"raise": "snooze"})
        self.assertEqual(run.outcome(), "snooze")
        self.assertEqual((run.snooze_seconds, run.error), (1.0, "busy"))

    def test_the_outcome_is_the_last_message(self):
        run = self.h.start("SCRIPTED", {"lines": ["a", "b"], "checkins": ["c"]})
        run.outcome()
        self.assertEqual([m.WhichOneof("msg") for m in run.messages][-1], "outcome")

    def test_unknown_job_and_bad_parameters_fail_for_good(self):
        run = self.h.start("NOPE", {})
        self.assertEqual(run.outcome(), "permanent")
        self.assertIn("does not serve job 'NOPE'", run.error)
        run = self.h.start("SCRIPTED", raw_params=b"[1]")
        self.assertEqual(run.outcome(), "permanent")
        self.assertIn("not a JSON object", run.error)


class StopTest(HarnessCase):
    def test_each_reason_reaches_the_job_at_once(self):
        for reason in (berth.STOP, berth.CANCEL, berth.SHUTDOWN):
            with self.subTest(reason=reason):
                run = self.h.start("SCRIPTED", {"checkins": ["holding"], "hold": 3600})
                run.wait_checkin("holding")
                start = time.monotonic()
                run.stop(reason)
                self.assertEqual(run.outcome(), "error")
                self.assertLess(time.monotonic() - start, 1.0)
                self.assertEqual(run.error, "stopped: " + reason)

    def test_a_stopped_job_that_returns_has_not_succeeded(self):
        run = self.h.start("SCRIPTED", {"checkins": ["holding"], "hold": 3600, "succeed_anyway": True})
        run.wait_checkin("holding")
        run.stop("cancel")
        self.assertEqual(run.outcome(), "error")
        self.assertEqual(run.error, "the job was asked to cancel")

    def test_the_first_reason_stands(self):
        run = self.h.start("SCRIPTED", {"checkins": ["holding"], "hold": 3600})
        run.wait_checkin("holding")
        run.stop("cancel")
        run.stop("stop")
        run.outcome()
        self.assertEqual(run.error, "stopped: cancel")

    def test_the_deadline_ends_the_run(self):
        run = self.h.start("SCRIPTED", {"hold": 3600}, deadline=time.time() + 0.2)
        self.assertEqual(run.outcome(), "error")
        self.assertEqual(run.error, "stopped: " + berth.DEADLINE)

    def test_a_stop_of_a_job_that_does_not_run_is_ignored(self):
        ghost = self.h.start("SCRIPTED", {})
        ghost.outcome()
        ghost.stop("stop")
        run = self.h.start("SCRIPTED", {"output": 1})
        self.assertEqual(run.outcome(), "success")

    def test_a_job_id_runs_once_at_a_time(self):
        run = self.h.start("SCRIPTED", {"checkins": ["holding"], "hold": 3600}, job_id="same")
        run.wait_checkin("holding")
        self.h.start("SCRIPTED", {}, job_id="same")
        self.assertEqual(run.outcome(), "permanent")
        self.assertIn("already running", run.error)
        run.kind = None
        run.stop("stop")
        self.assertEqual(run.outcome(), "error")

    def test_the_end_of_the_session_ends_every_run(self):
        seen = []
        done = threading.Event()

        class Watch(berth.Job):
            name = "WATCH"

            def run(self, ctx, params):
                ctx.checkin("up")
                ctx.wait(30)
                seen.append((ctx.stop_reason, ctx.checkin("after")))
                done.set()

        h = Harness(Watch())
        run = h.start("WATCH", {})
        run.wait_checkin("up")
        h.close()
        self.assertTrue(done.wait(5), "the run was not told the host is gone")
        self.assertEqual(seen, [(berth.HOST_GONE, False)])


class LogTest(HarnessCase):
    def test_lines_come_before_the_checkin_after_them(self):
        run = self.h.start("SCRIPTED", {"lines": ["one", "two"], "checkins": ["c1"], "output": 0})
        run.outcome()
        order = []
        for m in run.messages:
            kind = m.WhichOneof("msg")
            if kind == "logs":
                order.extend(e.message for e in m.logs.entries)
            elif kind == "checkin":
                order.append("checkin:" + m.checkin.message)
        self.assertEqual(order, ["one", "two", "checkin:c1"])

    def test_lines_are_batched(self):
        n = 3 * MAX_BATCH_ENTRIES
        run = self.h.start("SCRIPTED", {"lines": ["line %d" % i for i in range(n)]})
        run.outcome()
        batches = [m for m in run.messages if m.WhichOneof("msg") == "logs"]
        self.assertEqual([m for _, m in run.logs], ["line %d" % i for i in range(n)])
        self.assertLess(len(batches), n // 10, "one message per line")
        self.assertTrue(all(len(b.logs.entries) <= MAX_BATCH_ENTRIES for b in batches))

    def test_levels_and_formatting(self):
        class Levels(berth.Job):
            name = "LEVELS"

            def run(self, ctx, params):
                ctx.log.debug("d %d", 1)
                ctx.log.info("i")
                ctx.log.warning("w %s", "x")
                ctx.log.error("e %s", "only one arg", "extra")

        h = Harness(Levels())
        self.addCleanup(h.close)
        run = h.start("LEVELS", {})
        run.outcome()
        self.assertEqual(run.logs, [("debug", "d 1"), ("info", "i"), ("warning", "w x"),
                                    ("error", "e %s only one arg extra")])

    def test_a_stale_marker_sends_nothing(self):
        # A flush (check-in) sends the lines at once; a marker queued
        # before it must not send lines logged after it ahead of it.
        sent = []
        ctx = RunContext(pb.Start(job_id="j"), sent.append)
        ctx.log.info("a")
        ctx.checkin("c")
        ctx.log.info("b")
        stale = sent[0]
        self.assertIsInstance(stale, _LogMarker)
        self.assertIsNone(ctx._take(stale))
        fresh = [m for m in sent if isinstance(m, _LogMarker)][-1]
        self.assertEqual([e.message for e in ctx._take(fresh).logs.entries], ["b"])


class ContextTest(unittest.TestCase):
    def test_what_a_run_knows(self):
        seen = {}

        class Props(berth.Job):
            name = "PROPS"

            def run(self, ctx, params):
                seen.update(job_id=ctx.job_id, name=ctx.job_name, attempt=ctx.attempt, props=ctx.properties,
                            done=ctx.done(), reason=ctx.stop_reason)

        h = Harness(Props())
        self.addCleanup(h.close)
        h.start("PROPS", {}, job_id="abc", attempt=3, properties={"k": "v"}).outcome()
        self.assertEqual(seen, {"job_id": "abc", "name": "PROPS", "attempt": 3, "props": {"k": "v"},
                                "done": False, "reason": None})

    def test_output_must_be_small_json(self):
        ctx = RunContext(pb.Start(job_id="j"), lambda m: None)
        with self.assertRaises(TypeError):
            ctx.set_output(object())
        with self.assertRaisesRegex(ValueError, "more than the"):
            ctx.set_output("x" * MAX_OUTPUT_BYTES)

    def test_checkin_needs_a_message_and_a_live_run(self):
        sent = []
        ctx = RunContext(pb.Start(job_id="j"), sent.append)
        with self.assertRaises(ValueError):
            ctx.checkin("")
        self.assertTrue(ctx.checkin("ok"))
        ctx._finish(pb.Outcome(job_id="j"))
        self.assertFalse(ctx.checkin("late"))
        ctx.log.info("late")
        self.assertEqual([m.WhichOneof("msg") for m in sent], ["checkin", "outcome"])


class ServiceTest(HarnessCase):
    def test_describe(self):
        d = self.h.describe()
        self.assertEqual(d.sdk, "python/" + berth.__version__)
        self.assertEqual([j.name for j in d.jobs], ["SCRIPTED", "VALIDATING"])
        self.assertEqual([j.validates for j in d.jobs], [False, True])

    def test_validate_answers_the_refusal(self):
        self.assertEqual(self.h.validate("VALIDATING", {"n": 2}), "")
        self.assertEqual(self.h.validate("VALIDATING", {"n": 4}), 'parameter "n" must be at most 3, got 4')
        self.assertEqual(self.h.validate("VALIDATING", {"bug": True}), "validate raised TypeError: oops")
        with self.assertRaisesRegex(LookupError, "NOT_FOUND"):
            self.h.validate("NOPE", {})

    def test_configure(self):
        got = []

        def configure(section):
            if "token" not in section:
                raise ValueError('setting "token" is required')
            got.append(section)

        h = Harness(Scripted(), configure=configure, config_schema={"type": "object"})
        self.assertEqual(h.configure({}), 'setting "token" is required')
        self.assertEqual(h.configure({"token": "t"}), "")
        self.assertEqual(got, [{"token": "t"}])
        self.assertEqual(h.describe().config_schema, b'{"type": "object"}')
        self.assertEqual(Harness(Scripted()).configure({"anything": 1}), "")


if __name__ == "__main__":
    unittest.main()
