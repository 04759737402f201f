import json
import unittest

import berth
from berth._job import check_jobs, job_type, validates


class Plain(berth.Job):
    name = "PLAIN"

    def run(self, ctx, params):
        pass


class Checked(berth.Job):
    name = "CHECKED"
    params_schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    max_fails = 2
    should_retry = False
    max_concurrency = 5
    max_snoozes = 7
    version = "1.2.3"

    def validate(self, params):
        pass

    def run(self, ctx, params):
        pass


class JobTypeTest(unittest.TestCase):
    def test_defaults_are_the_hosts(self):
        t = job_type(Plain())
        self.assertEqual((t.name, t.max_fails, t.should_retry, t.max_concurrency, t.max_snoozes, t.version),
                         ("PLAIN", 0, True, 0, 0, ""))
        self.assertEqual(t.params_schema, b"")
        self.assertFalse(t.validates, "a job without its own validate must not make the host call Validate")

    def test_declarations_and_schema_travel(self):
        t = job_type(Checked())
        self.assertEqual((t.max_fails, t.should_retry, t.max_concurrency, t.max_snoozes, t.version),
                         (2, False, 5, 7, "1.2.3"))
        self.assertEqual(json.loads(t.params_schema), Checked.params_schema)
        self.assertTrue(t.validates)
        self.assertTrue(validates(Checked()))

    def test_bad_counts_are_refused_naming_them(self):
        class Neg(Plain):
            max_fails = -1
        with self.assertRaisesRegex(ValueError, "max_fails"):
            job_type(Neg())


class CheckJobsTest(unittest.TestCase):
    def test_refusals_name_what_is_wrong(self):
        class NoName(berth.Job):
            def run(self, ctx, params):
                pass

        class NoRun(berth.Job):
            name = "NORUN"

        class BadSchema(Plain):
            name = "BAD"
            params_schema = "object"

        class NotJSON(Plain):
            name = "NOTJSON"
            params_schema = {"default": object()}

        for jobs, err, text in [
            ([], ValueError, "at least one job"),
            ([object()], TypeError, "not a berth.Job"),
            ([NoName()], ValueError, "no name"),
            ([NoRun()], ValueError, "does not define run"),
            ([Plain(), Plain()], ValueError, "two jobs are named 'PLAIN'"),
            ([BadSchema()], TypeError, "params_schema must be a dict"),
            ([NotJSON()], TypeError, "not JSON"),
        ]:
            with self.subTest(text=text):
                with self.assertRaisesRegex(err, text):
                    check_jobs(jobs)

    def test_jobs_by_name(self):
        self.assertEqual(sorted(check_jobs([Plain(), Checked()])), ["CHECKED", "PLAIN"])
        self.assertEqual(list(check_jobs(Plain())), ["PLAIN"])


class SnoozeTest(unittest.TestCase):
    def test_at_least_a_second(self):
        self.assertEqual(berth.Snooze(0.2).seconds, 1.0)
        self.assertEqual(berth.Snooze(90, "busy").seconds, 90.0)
        self.assertIn("busy", str(berth.Snooze(90, "busy")))


if __name__ == "__main__":
    unittest.main()
