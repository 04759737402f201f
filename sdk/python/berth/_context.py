"""The context of one run: what a job sees of the host while it runs."""

import json
import threading
import time

from berth import berth_pb2 as pb

# Why a run was told to end (RunContext.stop_reason).
STOP = "stop"            # an operator stopped the job: it keeps what it did
CANCEL = "cancel"        # an operator cancelled it: it may undo its work
SHUTDOWN = "shutdown"    # the host is going away: the job runs again elsewhere
DEADLINE = "deadline"    # the run passed its deadline (the host's job_timeout)
HOST_GONE = "host_gone"  # the session with the host ended
HOST_FROZEN = "host_frozen"  # the host has been stopped (SIGSTOP) too long to keep its lease

_REASONS = {
    pb.STOP_REASON_STOP: STOP,
    pb.STOP_REASON_CANCEL: CANCEL,
    pb.STOP_REASON_SHUTDOWN: SHUTDOWN,
}

_WHY = {
    STOP: "the job was asked to stop",
    CANCEL: "the job was asked to cancel",
    SHUTDOWN: "the host is shutting down; the job will run again on another host",
    DEADLINE: "the job ran past its deadline (job_timeout)",
    HOST_GONE: "the host closed the session",
    HOST_FROZEN: "the host is frozen and cannot keep its lease on the job; the run is given up, another host will run it",
}

# Bounds of the log buffer of one run: a job that logs faster than the host
# takes its lines waits for them (backpressure) instead of growing memory.
MAX_BATCH_ENTRIES = 1000
MAX_BATCH_BYTES = 1 << 20
MAX_PENDING_BYTES = 4 << 20

MAX_OUTPUT_BYTES = 1 << 20


def reason_of(stop_reason):
    """The RunContext reason of a Stop message's reason."""
    return _REASONS.get(stop_reason, STOP)


def why(reason):
    return _WHY.get(reason, reason)


class Logger:
    """A run's log: every line goes to the job's log on the host, batched."""

    def __init__(self, ctx):
        self._ctx = ctx

    def debug(self, msg, *args):
        self._ctx._log(pb.LOG_LEVEL_DEBUG, msg, args)

    def info(self, msg, *args):
        self._ctx._log(pb.LOG_LEVEL_INFO, msg, args)

    def warning(self, msg, *args):
        self._ctx._log(pb.LOG_LEVEL_WARNING, msg, args)

    warn = warning

    def error(self, msg, *args):
        self._ctx._log(pb.LOG_LEVEL_ERROR, msg, args)


class _LogMarker:
    """Queued for a run when its first pending line comes: the sender takes
    the run's pending lines as one batch when it reaches the marker. A
    flush (check-in, outcome) sends the lines at once and makes queued
    markers stale (gen), so lines never overtake what came after them."""

    __slots__ = ("ctx", "gen")

    def __init__(self, ctx, gen):
        self.ctx, self.gen = ctx, gen


class RunContext:
    """One run of a job, handed to Job.run.

    job_id, job_name, attempt (from 1; a retry counts up, a snooze does
    not), properties (dict of the host's job properties), revision,
    deadline (unix seconds, or None), log (debug/info/warning/error).
    """

    def __init__(self, start, put):
        self.job_id = start.job_id
        self.job_name = start.job_name
        self.attempt = start.attempt
        self.properties = dict(start.properties)
        self.revision = start.revision
        self.deadline = start.deadline_unix_ms / 1000.0 if start.deadline_unix_ms > 0 else None
        self.log = Logger(self)
        self._put = put
        self._done = threading.Event()
        self._reason = None
        self._cond = threading.Condition()
        self._pending = []
        self._pending_bytes = 0
        self._marked = False
        self._gen = 0
        self._ended = False
        self._output = None
        self._timer = None
        if self.deadline is not None:
            self._timer = threading.Timer(max(self.deadline - time.time(), 0), self._signal, (DEADLINE,))
            self._timer.daemon = True
            self._timer.start()

    # --- what a job calls

    def checkin(self, message):
        """Sends a progress message: it becomes the job's check_in and goes
        to its status hook, after the lines logged before it. It does not
        wait for the host. True when sent; False once run returned or the
        session with the host ended (it works after a stop)."""
        if not isinstance(message, str) or not message:
            raise ValueError("berth: a check-in needs a message (a non-empty str)")
        with self._cond:
            if self._ended:
                return False
            self._flush()
            self._put(pb.PluginMessage(checkin=pb.Checkin(job_id=self.job_id, message=message)))
            return True

    def done(self):
        """True once the run was told to end (stop_reason says why)."""
        return self._done.is_set()

    def wait(self, timeout=None):
        """Waits up to timeout seconds (None: for ever) for the run to be told
        to end; True when it was. Use it instead of time.sleep to hold."""
        return self._done.wait(timeout)

    @property
    def stop_reason(self):
        """None while the run may go on; then STOP, CANCEL, SHUTDOWN,
        DEADLINE or HOST_GONE. The first reason stands."""
        return self._reason

    def set_output(self, obj):
        """Sets what a successful run produced: obj as JSON (at most 1 MiB),
        kept with the job's stats and sent in its final status hook."""
        raw = json.dumps(obj).encode()
        if len(raw) > MAX_OUTPUT_BYTES:
            raise ValueError("berth: the output is %d bytes of JSON, more than the %d allowed"
                             % (len(raw), MAX_OUTPUT_BYTES))
        self._output = raw

    # --- the sdk's side

    def _signal(self, reason):
        with self._cond:
            if self._reason is None and not self._ended:
                self._reason = reason
                self._done.set()

    def _log(self, level, msg, args):
        text = str(msg)
        if args:
            try:
                text = text % args
            except (TypeError, ValueError):
                text = " ".join([text] + [str(a) for a in args])
        entry = pb.LogEntry(level=level, message=text, time_unix_nano=time.time_ns())
        with self._cond:
            while self._pending_bytes >= MAX_PENDING_BYTES and not self._ended:
                self._cond.wait()
            if self._ended:
                return
            self._pending.append(entry)
            self._pending_bytes += len(text)
            if not self._marked:
                self._marked = True
                self._put(_LogMarker(self, self._gen))

    def _cut(self):
        """Removes the next batch from the pending lines; self._cond is held."""
        n, size = 0, 0
        while n < len(self._pending) and n < MAX_BATCH_ENTRIES:
            ln = len(self._pending[n].message)
            if n > 0 and size + ln > MAX_BATCH_BYTES:
                break
            size += ln
            n += 1
        entries = self._pending[:n]
        del self._pending[:n]
        self._pending_bytes -= size
        self._cond.notify_all()
        return pb.PluginMessage(logs=pb.Logs(job_id=self.job_id, entries=entries))

    def _flush(self):
        """Queues the pending lines now; self._cond is held."""
        self._gen += 1
        self._marked = False
        while self._pending:
            self._put(self._cut())

    def _take(self, marker):
        """The batch a marker stands for (None when stale or empty); called
        by the sender."""
        with self._cond:
            if marker.gen != self._gen or not self._pending:
                return None
            msg = self._cut()
            if self._pending:
                self._put(_LogMarker(self, self._gen))
            else:
                self._marked = False
            return msg

    def _finish(self, outcome):
        """Ends the run: the last lines, then the outcome; nothing after."""
        with self._cond:
            if self._ended:
                return
            self._flush()
            self._ended = True
            self._cond.notify_all()
            if outcome is not None:
                self._put(pb.PluginMessage(outcome=outcome))
        if self._timer is not None:
            self._timer.cancel()

    def _abandon(self):
        """The session ended: the run is told so, and sends nothing more."""
        self._signal(HOST_GONE)
        with self._cond:
            self._ended = True
            self._pending, self._pending_bytes = [], 0
            self._cond.notify_all()
        if self._timer is not None:
            self._timer.cancel()
