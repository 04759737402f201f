// Command features is a test plugin whose job types show the features of
// plugin protocol v2:
//
//	TYPED       typed parameters {count: 1..10, label} and no Validate: the
//	            host checks the schema alone; checks in what it got.
//	OUTPUT      succeeds with its "value" parameter as its output.
//	PERMANENT   fails with sdk.Permanent: never retried.
//	SNOOZE      snoozes "seconds" until it ran "times" times in this
//	            process (MaxSnoozes 3), then succeeds.
//	CONFIG      checks in the plugin's plugin_config section (greeting,
//	            and the length of token); a greeting "refuse" is refused.
//	CHATTY      logs "lines" lines and checks in "checkins" times.
//
// It takes a plugin_config section (greeting, token). It is a test
// fixture only.
package main
