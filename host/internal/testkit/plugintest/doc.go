// Package plugintest builds real plugin binaries for tests and lays them
// out in a plugins directory of the test's own.
//
// Each binary is built once per test process (go build's cache makes that
// fast); when BERTH_TEST_PLUGINS points at a directory holding prebuilt
// binaries (make test builds bin/plugins first), those are used for the
// product plugins. Besides the product plugins (demo, scan, gc,
// replication) it knows two fixtures: "fixture", which serves job types
// that misbehave on purpose, and "dupdemo", which claims the name DEMO.
//
// Tests only: nothing outside tests may import it.
package plugintest
