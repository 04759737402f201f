"""Runs jobs in a unit test through the sdk's own session, without a host.

    h = berth.testing.Harness(MyJob())
    run = h.start("MY_JOB", {"n": 3})
    run.wait_checkin("half way")
    run.stop(berth.STOP)
    outcome = run.outcome()        # "success", "error", "permanent" or "snooze"
    h.close()

What a run sent is in run.checkins, run.logs ((level, message) pairs) and,
after its outcome, run.error, run.output (decoded JSON) and
run.snooze_seconds.
"""

import itertools
import json
import queue
import threading
import time

from berth import berth_pb2 as pb
from berth._server import Servicer

_KINDS = {
    pb.Outcome.KIND_SUCCESS: "success",
    pb.Outcome.KIND_ERROR: "error",
    pb.Outcome.KIND_PERMANENT_ERROR: "permanent",
    pb.Outcome.KIND_SNOOZE: "snooze",
}

_LEVELS = {
    pb.LOG_LEVEL_DEBUG: "debug",
    pb.LOG_LEVEL_INFO: "info",
    pb.LOG_LEVEL_WARNING: "warning",
    pb.LOG_LEVEL_ERROR: "error",
    pb.LOG_LEVEL_FATAL: "fatal",
}

_STOPS = {
    "stop": pb.STOP_REASON_STOP,
    "cancel": pb.STOP_REASON_CANCEL,
    "shutdown": pb.STOP_REASON_SHUTDOWN,
}

_CLOSE = object()


class _Context:
    """The bits of a gRPC servicer context the sdk uses."""

    def __init__(self):
        self.callbacks = []

    def add_callback(self, fn):
        self.callbacks.append(fn)
        return True

    def abort(self, code, details):
        raise LookupError("%s: %s" % (code, details))


class Run:
    """One run started through a Harness."""

    def __init__(self, job_id):
        self.job_id = job_id
        self.messages = []  # every PluginMessage of the run, in order
        self.checkins = []
        self.logs = []
        self.kind = None
        self.error = ""
        self.output = None
        self.snooze_seconds = None
        self.panicked = False
        self._cond = threading.Condition()
        self._stop = None

    def _add(self, m):
        with self._cond:
            self.messages.append(m)
            kind = m.WhichOneof("msg")
            if kind == "checkin":
                self.checkins.append(m.checkin.message)
            elif kind == "logs":
                self.logs.extend((_LEVELS.get(e.level, "info"), e.message) for e in m.logs.entries)
            elif kind == "outcome":
                o = m.outcome
                self.kind, self.error, self.panicked = _KINDS.get(o.kind, "unspecified"), o.error, o.panicked
                self.output = json.loads(o.output) if o.output else None
                if o.kind == pb.Outcome.KIND_SNOOZE:
                    self.snooze_seconds = o.snooze_millis / 1000.0
            self._cond.notify_all()

    def _wait(self, cond, timeout, what):
        deadline = time.monotonic() + timeout
        with self._cond:
            while not cond():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("berth.testing: run %s: no %s within %gs; check-ins %r, logs %r"
                                         % (self.job_id, what, timeout, self.checkins, self.logs))
                self._cond.wait(left)

    def wait_checkin(self, message, timeout=10):
        """Waits until the run has checked in message."""
        self._wait(lambda: message in self.checkins, timeout, "check-in %r" % message)

    def wait_log(self, text, timeout=10):
        """Waits until a line of the run's log contains text."""
        self._wait(lambda: any(text in m for _, m in self.logs), timeout, "log line with %r" % text)

    def outcome(self, timeout=10):
        """Waits for the run's outcome and returns its kind."""
        self._wait(lambda: self.kind is not None, timeout, "outcome")
        return self.kind

    def stop(self, reason="stop"):
        """Sends the run a stop: "stop", "cancel" or "shutdown"."""
        self._stop(pb.HostMessage(stop=pb.Stop(job_id=self.job_id, reason=_STOPS[reason])))


class Harness:
    """A plugin's service over jobs, driven as the host drives it."""

    def __init__(self, *jobs, configure=None, config_schema=None):
        self.servicer = Servicer(jobs, configure=configure, config_schema=config_schema)
        self._in = queue.SimpleQueue()
        self._runs = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._context = _Context()
        self.session = None
        self._sent = None
        self._reader = None

    def describe(self):
        return self.servicer.Describe(pb.DescribeRequest(), self._context)

    def configure(self, config):
        """Hands the plugin its configuration; returns its refusal ("" when
        taken)."""
        return self.servicer.Configure(pb.ConfigureRequest(config=json.dumps(config).encode()), self._context).error

    def validate(self, name, params):
        """Asks the plugin to validate params; returns its refusal ("" when
        valid)."""
        req = pb.ValidateRequest(job_name=name, parameters=json.dumps(params).encode())
        return self.servicer.Validate(req, self._context).error

    def _requests(self):
        while True:
            m = self._in.get()
            if m is _CLOSE:
                return
            yield m

    def _open(self):
        if self.session is None:
            self.session = self.servicer.Session(self._requests(), self._context)
            self._reader = threading.Thread(target=self._collect, daemon=True)
            self._reader.start()

    def _collect(self):
        for m in self.session:
            job_id = getattr(m, m.WhichOneof("msg")).job_id
            with self._lock:
                run = self._runs.get(job_id)
            if run is not None:
                run._add(m)

    def start(self, name, params=None, *, job_id=None, attempt=1, properties=None, deadline=None, raw_params=None):
        """Starts a run of job name on the session; deadline is unix
        seconds."""
        self._open()
        job_id = job_id or "job%d" % next(self._ids)
        with self._lock:
            run = self._runs.get(job_id)
            if run is None:
                run = self._runs[job_id] = Run(job_id)
        run._stop = self._in.put
        raw = raw_params if raw_params is not None else json.dumps(params or {}).encode()
        self._in.put(pb.HostMessage(start=pb.Start(
            job_id=job_id, job_name=name, parameters=raw, attempt=attempt, properties=properties or {},
            deadline_unix_ms=int(deadline * 1000) if deadline else 0)))
        return run

    def close(self, timeout=10):
        """Ends the session as a host that goes away does."""
        if self.session is None:
            return
        self._in.put(_CLOSE)
        for fn in self._context.callbacks:
            fn()
        self._reader.join(timeout)
        if self._reader.is_alive():
            raise AssertionError("berth.testing: the session did not end within %gs" % timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
