// Package fakeclock is a clock.Clock for tests: time stands still until
// the test moves it with Advance or Set, and timers fire when the time
// they wait for is reached.
//
// Tests only: nothing outside tests may import it.
package fakeclock
