"""The Plugin service: Describe, Configure, Validate and the session."""

import json
import queue
import threading
import traceback

import grpc

from berth import berth_pb2 as pb
from berth import berth_pb2_grpc as pb_grpc
from berth._context import RunContext, _LogMarker, reason_of, why
from berth._job import Permanent, Snooze, check_jobs, job_type

VERSION = "0.2.0"
SDK = "python/" + VERSION

_END = object()  # ends the session's sender


def _decode_object(raw, what):
    """A JSON object from bytes ({} for none), or ValueError."""
    if not raw:
        return {}
    try:
        v = json.loads(raw)
    except ValueError as e:
        raise ValueError("the %s are not JSON: %s" % (what, e)) from None
    if not isinstance(v, dict):
        raise ValueError("the %s are not a JSON object" % what)
    return v


def _text(e):
    msg = str(e)
    return msg if msg else "the job raised %s with no message" % type(e).__name__


class Servicer(pb_grpc.PluginServicer):
    """The plugin's gRPC Plugin service over a set of jobs."""

    def __init__(self, jobs, configure=None, config_schema=None):
        self.jobs = check_jobs(jobs)
        self.configure = configure
        self.config_schema = b"" if config_schema is None else json.dumps(config_schema, sort_keys=True).encode()
        self._sessions_lock = threading.Lock()
        self._sessions = set()

    def Describe(self, request, context):
        return pb.DescribeResponse(
            jobs=[job_type(self.jobs[n]) for n in sorted(self.jobs)],
            sdk=SDK, config_schema=self.config_schema)

    def Configure(self, request, context):
        if self.configure is None:
            return pb.ConfigureResponse()
        try:
            self.configure(_decode_object(request.config, "configuration"))
        except Exception as e:  # a refusal, naming the setting
            return pb.ConfigureResponse(error=_text(e))
        return pb.ConfigureResponse()

    def Validate(self, request, context):
        job = self.jobs.get(request.job_name)
        if job is None:
            context.abort(grpc.StatusCode.NOT_FOUND, "berth: this plugin does not serve job %r" % request.job_name)
        try:
            job.validate(_decode_object(request.parameters, "parameters"))
        except ValueError as e:
            return pb.ValidateResponse(error=_text(e))
        except Exception as e:
            return pb.ValidateResponse(error="validate raised %s: %s" % (type(e).__name__, e))
        return pb.ValidateResponse()

    def Session(self, request_iterator, context):
        s = Session(self.jobs)
        with self._sessions_lock:
            self._sessions.add(s)

        def done():
            s.close()
            with self._sessions_lock:
                self._sessions.discard(s)
        context.add_callback(done)
        return s.serve(request_iterator)

    def abandon_all(self, reason):
        """Ends every run's wait with reason (the host is frozen)."""
        with self._sessions_lock:
            sessions = list(self._sessions)
        for s in sessions:
            s.signal_all(reason)


class Session:
    """The plugin's end of the host's one stream. A reader thread takes what
    the host sends; each run has a thread of its own; everything a run
    sends goes through one queue, which the response generator (gRPC's
    one sender) drains in order."""

    def __init__(self, jobs):
        self.jobs = jobs
        self._out = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._runs = {}
        self._closed = False

    def serve(self, requests):
        threading.Thread(target=self._read, args=(requests,), name="berth-session-reader", daemon=True).start()
        return self._send()

    def _put(self, m):
        self._out.put(m)

    def _send(self):
        while True:
            m = self._out.get()
            if m is _END:
                return
            if isinstance(m, _LogMarker):
                m = m.ctx._take(m)
                if m is None:
                    continue
            yield m

    def _read(self, requests):
        try:
            for m in requests:
                kind = m.WhichOneof("msg")
                if kind == "start":
                    self._start(m.start)
                elif kind == "stop":
                    with self._lock:
                        ctx = self._runs.get(m.stop.job_id)
                    if ctx is not None:
                        ctx._signal(reason_of(m.stop.reason))
        except Exception:  # the stream broke: the session is over
            pass
        finally:
            self.close()

    def close(self):
        """Ends the session: every run is told the host is gone."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            runs = list(self._runs.values())
        for ctx in runs:
            ctx._abandon()
        self._out.put(_END)

    def running(self):
        with self._lock:
            return sorted(self._runs)

    def signal_all(self, reason):
        """Tells every run of the session to end, for reason."""
        with self._lock:
            runs = list(self._runs.values())
        for ctx in runs:
            ctx._signal(reason)

    def _fail(self, job_id, msg):
        self._put(pb.PluginMessage(outcome=pb.Outcome(job_id=job_id, kind=pb.Outcome.KIND_PERMANENT_ERROR, error=msg)))

    def _start(self, st):
        job = self.jobs.get(st.job_name)
        if job is None:
            self._fail(st.job_id, "berth: this plugin does not serve job %r" % st.job_name)
            return
        try:
            params = _decode_object(st.parameters, "parameters")
        except ValueError as e:
            self._fail(st.job_id, "berth: %s" % e)
            return
        with self._lock:
            if self._closed:
                return
            if st.job_id in self._runs:
                dup = True
            else:
                dup = False
                ctx = RunContext(st, self._put)
                self._runs[st.job_id] = ctx
        if dup:
            self._fail(st.job_id, "berth: job %s is already running in this plugin" % st.job_id)
            return
        threading.Thread(target=self._run, args=(job, ctx, params), name="berth-run-" + st.job_id, daemon=True).start()

    def _run(self, job, ctx, params):
        out = run_job(job, ctx, params)
        with self._lock:
            self._runs.pop(ctx.job_id, None)
        ctx._finish(out)


def run_job(job, ctx, params):
    """Runs the job and words its outcome."""
    out = pb.Outcome(job_id=ctx.job_id)
    try:
        job.run(ctx, params)
    except Snooze as s:
        out.kind, out.error, out.snooze_millis = pb.Outcome.KIND_SNOOZE, s.reason or str(s), int(s.seconds * 1000)
    except Permanent as e:
        out.kind, out.error = pb.Outcome.KIND_PERMANENT_ERROR, _text(e)
    except Exception as e:
        ctx.log.error("%s: %s\n%s", type(e).__name__, e, traceback.format_exc().rstrip())
        out.kind, out.error = pb.Outcome.KIND_ERROR, _text(e)
    except BaseException as e:  # SystemExit, KeyboardInterrupt in a run: the process survives it
        ctx.log.error("run raised %s\n%s", type(e).__name__, traceback.format_exc().rstrip())
        out.kind, out.error, out.panicked = pb.Outcome.KIND_ERROR, "run raised %s: %s" % (type(e).__name__, e), True
    else:
        if ctx.stop_reason is not None:
            # Told to end, and said nothing: the host knows why, but a job
            # that was ended has not succeeded.
            out.kind, out.error = pb.Outcome.KIND_ERROR, why(ctx.stop_reason)
        else:
            out.kind = pb.Outcome.KIND_SUCCESS
            if ctx._output is not None:
                out.output = ctx._output
    return out

