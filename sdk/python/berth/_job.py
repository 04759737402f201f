"""Job types, and the exceptions a run ends with."""

import json

from berth import berth_pb2 as pb


class Permanent(Exception):
    """Raised by run: the run failed in a way a retry cannot mend (a wrong
    password). The host records Error at once and never retries it."""


class Snooze(Exception):
    """Raised by run: run the job again after `seconds` (at least one),
    without counting a failure. The job shows Scheduled meanwhile."""

    def __init__(self, seconds, reason=""):
        self.seconds = max(float(seconds), 1.0)
        self.reason = reason
        msg = "snoozed for %gs" % self.seconds
        if reason:
            msg += ": " + reason
        super().__init__(msg)


class InvalidParams(ValueError):
    """Raised by validate: the parameters are wrong. The message names the
    parameter and says what it must be; the client gets it in a 400."""


class Job:
    """A job type. Subclass it, set `name` and write `run`; everything else
    has the host's defaults.

    name             the job name clients submit (required)
    params_schema    JSON Schema (draft 2020-12) of the parameters, a dict;
                     the host checks every submission against it
    max_fails        failed runs allowed; 0 is the host's default (4)
    should_retry     whether a failed run is retried (while under max_fails)
    max_concurrency  most runs at once across every host; 0 is no limit
    max_snoozes      how often one run may snooze; 0 is the host's default
    version          shown in the host's log and listings

    One process serves many runs at once, each in a thread of its own:
    keep per-run state in run's local variables.
    """

    name = ""
    params_schema = None
    max_fails = 0
    should_retry = True
    max_concurrency = 0
    max_snoozes = 0
    version = ""

    def validate(self, params):
        """Checks what the schema cannot. Raise ValueError (InvalidParams)
        with a message naming the parameter to refuse the submission.
        Define it only when needed: a job type without it costs a
        submission no call into the plugin."""

    def run(self, ctx, params):
        """Runs the job: params is the JSON object of the submission (a
        dict), ctx the RunContext. Return to succeed; raise Permanent,
        Snooze or any other exception (a failure, retried by max_fails and
        should_retry)."""
        raise NotImplementedError("%s does not define run(self, ctx, params)" % type(self).__name__)


def validates(job):
    """Whether the job type defines its own validate."""
    return type(job).validate is not Job.validate


def _count(job, attr):
    v = getattr(job, attr)
    if isinstance(v, bool) or not isinstance(v, int) or v < 0 or v > 0xFFFFFFFF:
        raise ValueError("berth: job %r: %s must be a whole number from 0, got %r" % (job.name, attr, v))
    return v


def job_type(job):
    """The JobType message that Describe answers for job."""
    schema = b""
    if job.params_schema is not None:
        schema = json.dumps(job.params_schema, sort_keys=True).encode()
    return pb.JobType(
        name=job.name,
        max_fails=_count(job, "max_fails"),
        should_retry=bool(job.should_retry),
        max_concurrency=_count(job, "max_concurrency"),
        max_snoozes=_count(job, "max_snoozes"),
        version=str(job.version or ""),
        params_schema=schema,
        validates=validates(job),
    )


def check_jobs(jobs):
    """Returns the jobs by name, or raises naming what cannot be served."""
    if isinstance(jobs, Job):
        jobs = [jobs]
    jobs = list(jobs)
    if not jobs:
        raise ValueError("berth.serve needs at least one job: berth.serve([MyJob()])")
    by_name = {}
    for job in jobs:
        if not isinstance(job, Job):
            raise TypeError("berth.serve: %r is not a berth.Job (subclass it)" % (job,))
        if not isinstance(job.name, str) or not job.name:
            raise ValueError("berth.serve: job %s has no name: set name = \"MY_JOB\"" % type(job).__name__)
        if job.name in by_name:
            raise ValueError("berth.serve: two jobs are named %r" % job.name)
        if type(job).run is Job.run:
            raise ValueError("berth.serve: job %r does not define run(self, ctx, params)" % job.name)
        if job.params_schema is not None and not isinstance(job.params_schema, dict):
            raise TypeError("berth.serve: job %r: params_schema must be a dict (a JSON Schema), got %s"
                            % (job.name, type(job.params_schema).__name__))
        try:
            job_type(job)
        except TypeError as e:
            raise TypeError("berth.serve: job %r: params_schema is not JSON: %s" % (job.name, e)) from None
        by_name[job.name] = job
    return by_name
