// Package plugintest builds real plugin binaries for tests and lays them
// out in a plugins directory of the test's own.
//
// Each binary is built once per test process (go build's cache makes that
// fast); when BERTH_TEST_PLUGINS points at a directory holding prebuilt
// binaries (make test builds bin/plugins first), those are used for the
// product plugins. Besides the product plugins (demo, scheduler, webhook,
// slack, scan, gc, replication) it knows four fixtures: "fixture", which
// serves job types that misbehave on purpose, "features", which shows
// protocol v2's outcomes, schemas and configuration, "dupdemo", which
// claims the name DEMO, and "oldproto", which speaks only version 1 of the
// plugin protocol. It also knows "pydemo", a Python script that is not
// built: the repository file itself is used (it finds the Python sdk
// through its own real path).
//
// Tests only: nothing outside tests may import it.
package plugintest
