// Package loop runs the background work of a host component (the due-job
// mover, the periodic scheduler, the reaper, the job log sweeper): one
// goroutine that runs a function again and again, each run saying how long
// to wait before the next, woken early by Kick, until Stop. It owns the
// timer, the kick and the stop of every such loop; the components own only
// what one run does.
//
// It never decides what a run does or when a component is due; a run
// returns its next wait.
package loop
