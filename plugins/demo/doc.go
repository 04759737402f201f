// Command demo is the DEMO job plugin: Berth's reference plugin and the
// fixture of the host's end-to-end tests.
//
// A DEMO job logs log_lines lines, checks in "progress data: %30" and
// "progress data: %60", then holds for hold_seconds (default 30) and
// succeeds. It ends at once when its context is done (stop, cancel,
// shutdown). With fail it returns an error right after its check-ins; with
// crash the plugin process exits abruptly instead.
//
// Parameters:
//
//	image        string, required, must start with "demo"
//	hold_seconds number, 0 to 3600, default 30
//	fail         bool
//	crash        bool
//	log_lines    integer, 0 to 100000
//
// It imports sdk only, never the host.
package main
