// Command dupdemo is a test fixture: a plugin that claims the job name
// DEMO, which the demo plugin serves too.
//
// It is a test fixture only, for the startup error that names both files.
package main
