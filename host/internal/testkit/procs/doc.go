// Package procs helps tests look at processes (is a plugin still alive?)
// and collect concurrent output.
//
// It only observes: it starts and kills nothing.
package procs
