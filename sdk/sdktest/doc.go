// Package sdktest runs a Berth job in a unit test, without a host.
//
// Parameters are passed through JSON on their way to the job, exactly as
// the host delivers them (numbers become float64), and the run's check-ins,
// log lines and launched sub-jobs are recorded for the test to inspect.
// Start runs a job in the background so that a test can stop or cancel it
// the way an operator would through the API.
//
// It is for tests of plugins; a plugin's main never imports it.
package sdktest
