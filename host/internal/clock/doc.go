// Package clock is the host's injectable time: the real clock in
// production, a fake one (testkit/fakeclock) in tests that must move time
// without waiting for it.
//
// It has no fake of its own (that is testkit/fakeclock) and no global
// mutable state: Real is a value without fields.
package clock
