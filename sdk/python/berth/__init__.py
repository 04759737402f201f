"""Berth's Python sdk: write a Berth job plugin in Python.

A plugin is an executable that serves one or more job types:

    import berth

    class Hello(berth.Job):
        name = "HELLO"
        params_schema = {"type": "object", "properties": {"who": {"type": "string"}},
                         "required": ["who"], "additionalProperties": False}

        def run(self, ctx, params):
            ctx.log.info("hello, %s", params["who"])
            ctx.checkin("said hello")
            ctx.set_output({"greeted": params["who"]})

    if __name__ == "__main__":
        berth.serve([Hello()])

Drop it (executable, with a #!/usr/bin/python3 line) into the host's
plugins directory; the host starts it and drives it over gRPC
(hashicorp/go-plugin, Berth plugin protocol 2: docs/plugin-protocol.md).
berth.testing runs a job in a unit test without a host.
"""

from berth._context import CANCEL, DEADLINE, HOST_FROZEN, HOST_GONE, SHUTDOWN, STOP, RunContext
from berth._job import InvalidParams, Job, Permanent, Snooze
from berth._server import SDK, VERSION, Servicer

__version__ = VERSION

__all__ = ["serve", "Job", "RunContext", "Permanent", "Snooze", "InvalidParams",
           "STOP", "CANCEL", "SHUTDOWN", "DEADLINE", "HOST_GONE", "HOST_FROZEN", "SDK", "__version__"]


def serve(jobs, *, configure=None, config_schema=None):
    """Serves jobs (Job instances) to the Berth host that started this
    program, and exits the process when the host lets it go. It raises
    before serving when the jobs cannot be served (no job, no name, two of
    one name, no run). Run by hand without the host, the program says it
    is a Berth plugin and exits with status 1; with BERTH_PLUGIN_DEBUG=1
    it serves without a host and prints the line that attaches one.

    configure, when given, takes the plugin's section of the host
    configuration (a dict) before any job; raising refuses it (say which
    setting), and the host does not start. config_schema is that
    section's JSON Schema (a dict), shown to operators.
    """
    from berth._goplugin import serve_process
    serve_process(Servicer(jobs, configure=configure, config_schema=config_schema))
