package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/host/client"
)

// submitFlags are the flags of submit.
type submitFlags struct {
	params     []string
	paramsFile string
	kind       string
	delay      uint64
	cron       string
	unique     bool
	hook       string
	wait       bool
	interval   time.Duration
}

const submitLong = `Submit a job called NAME and print its ID.

Parameters come from --params-file (a JSON object; - reads stdin), then from
each --param key=value, which wins over the file. A value that is JSON is
sent as that JSON (5, true, null, [1,2], {"a":1}, "quoted text"); any other
value is sent as a string: --param image=demo sends "demo", --param 'n="5"'
the string "5".

The kind is Generic unless --kind says otherwise; --delay alone means
Scheduled and --cron alone Periodic. A cron spec has 6 fields, seconds first,
in UTC: "0 */5 * * * *".

With --wait, berthctl follows the job to its final status, prints it and
exits by it: 0 Success, 1 Error, 2 Stopped.`

func (a *app) submitCommand() *cobra.Command {
	var f submitFlags
	cmd := &cobra.Command{
		Use:   "submit NAME",
		Short: "Submit a job and print its ID",
		Long:  submitLong,
		Example: `  berthctl submit DEMO --param image=demo --param hold_seconds=5
  berthctl submit DEMO --params-file params.json --wait
  berthctl submit DEMO --param image=demo --cron '0 */5 * * * *' --unique`,
		Args: exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := buildRequest(args[0], f, cmd.Flags().Changed, a.stdin)
			if err != nil {
				return usage(err)
			}
			if f.wait && f.interval <= 0 {
				return usagef("--interval %s: want a positive duration", f.interval)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			st, err := c.Submit(cmd.Context(), req)
			if err != nil {
				return remote(err)
			}
			if a.json() {
				err = a.printLast()
			} else {
				_, err = fmt.Fprintln(a.stdout, st.ID)
			}
			if err != nil || !f.wait {
				return err
			}
			final, err := a.follow(cmd.Context(), st.ID, f.interval, nil)
			if err != nil {
				return err
			}
			if a.json() {
				err = a.printLast()
			} else {
				_, err = fmt.Fprintln(a.stdout, final.Status)
			}
			if err != nil {
				return err
			}
			return &endedError{status: final.Status}
		},
	}
	f.register(cmd)
	return cmd
}

// register adds the flags of submit to cmd.
func (f *submitFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringArrayVarP(&f.params, "param", "p", nil, "a parameter, key=value (value: JSON, or else a string); repeatable")
	fl.StringVar(&f.paramsFile, "params-file", "", "a JSON object of parameters (- for stdin)")
	fl.StringVar(&f.kind, "kind", "", "Generic, Scheduled or Periodic (default: from --delay and --cron, else Generic)")
	fl.Uint64Var(&f.delay, "delay", 0, "seconds to wait before the run (a Scheduled job)")
	fl.StringVar(&f.cron, "cron", "", "6-field cron spec, seconds first, UTC (a Periodic policy)")
	fl.BoolVar(&f.unique, "unique", false, "refuse the job while an identical one is not final")
	fl.StringVar(&f.hook, "hook", "", "http(s) URL to POST every status change and check-in to")
	fl.BoolVar(&f.wait, "wait", false, "wait for the final status and exit by it")
	fl.DurationVar(&f.interval, "interval", defaultInterval, "how often --wait reads the job")
	must(cmd.RegisterFlagCompletionFunc("kind", kindCompletion))
}

// buildRequest makes the submission of submit NAME; changed tells whether
// a flag was given.
func buildRequest(name string, f submitFlags, changed func(string) bool, stdin io.Reader) (client.RequestJob, error) {
	req := client.RequestJob{Name: strings.TrimSpace(name), StatusHook: f.hook}
	if req.Name == "" {
		return req, errors.New("NAME is empty")
	}
	kind, err := submitKind(f, changed)
	if err != nil {
		return req, err
	}
	if f.wait && kind == client.Periodic {
		return req, errors.New("--wait does not go with a Periodic policy, which runs until it is stopped: watch or list its executions")
	}
	req.Metadata = &client.Metadata{Kind: kind, Unique: f.unique}
	switch kind {
	case client.KindScheduled:
		req.Metadata.ScheduleDelay = f.delay
	case client.Periodic:
		req.Metadata.CronSpec = strings.TrimSpace(f.cron)
	}
	if req.Parameters, err = readParams(f.paramsFile, f.params, stdin); err != nil {
		return req, err
	}
	return req, nil
}

// submitKind is the kind of a submission, from --kind, --delay and --cron.
func submitKind(f submitFlags, changed func(string) bool) (client.Kind, error) {
	delay, cron := changed("delay"), changed("cron")
	var kind client.Kind
	switch {
	case f.kind != "":
		k, err := parseKind(f.kind)
		if err != nil {
			return "", err
		}
		kind = k
	case delay && cron:
		return "", errors.New("--delay (a Scheduled job) and --cron (a Periodic policy) do not go together")
	case delay:
		kind = client.KindScheduled
	case cron:
		kind = client.Periodic
	default:
		kind = client.Generic
	}
	switch {
	case kind == client.KindScheduled && !delay:
		return "", errors.New("--kind Scheduled needs --delay SECONDS")
	case kind == client.Periodic && (!cron || strings.TrimSpace(f.cron) == ""):
		return "", errors.New(`--kind Periodic needs --cron SPEC (6 fields, seconds first: "0 */5 * * * *")`)
	case delay && kind != client.KindScheduled:
		return "", fmt.Errorf("--delay is for Scheduled jobs, not %s", kind)
	case cron && kind != client.Periodic:
		return "", fmt.Errorf("--cron is for Periodic policies, not %s", kind)
	}
	return kind, nil
}

// parseKind reads a kind, in any case.
func parseKind(s string) (client.Kind, error) {
	for _, k := range client.Kinds {
		if strings.EqualFold(s, string(k)) {
			return k, nil
		}
	}
	return "", fmt.Errorf("kind %q: want Generic, Scheduled or Periodic", s)
}

// parseStatus reads a status, in any case.
func parseStatus(s string) (client.Status, error) {
	for _, st := range client.Statuses {
		if strings.EqualFold(s, string(st)) {
			return st, nil
		}
	}
	return "", fmt.Errorf("status %q: want one of Pending, Scheduled, Running, Stopped, Error, Success", s)
}

// readParams reads the parameters of --params-file (path, "-" for stdin)
// and then of each --param; nil when there are none.
func readParams(path string, pairs []string, stdin io.Reader) (client.Parameters, error) {
	var params client.Parameters
	if path != "" {
		var (
			raw []byte
			err error
		)
		if path == "-" {
			raw, err = io.ReadAll(stdin)
		} else {
			raw, err = os.ReadFile(path)
		}
		if err != nil {
			return nil, fmt.Errorf("--params-file: %w", err)
		}
		v, err := decodeJSON(raw)
		if err != nil {
			return nil, fmt.Errorf("--params-file %s: not JSON: %w", path, err)
		}
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("--params-file %s: want a JSON object, got %s", path, jsonType(v))
		}
		params = obj
	}
	given := map[string]bool{}
	for _, p := range pairs {
		key, value, ok := strings.Cut(p, "=")
		key = strings.TrimSpace(key)
		if !ok || key == "" {
			return nil, fmt.Errorf("--param %q: want key=value", p)
		}
		if given[key] {
			return nil, fmt.Errorf("--param %s is given twice", key)
		}
		given[key] = true
		if params == nil {
			params = client.Parameters{}
		}
		params[key] = paramValue(value)
	}
	return params, nil
}

// paramValue is the JSON value value holds, or else value as a string.
func paramValue(value string) any {
	if v, err := decodeJSON([]byte(value)); err == nil {
		return v
	}
	return value
}

// decodeJSON decodes exactly one JSON value, keeping numbers as written.
func decodeJSON(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("more than one JSON value")
	}
	return v, nil
}

// jsonType names the JSON type of v.
func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case []any:
		return "an array"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	}
	return "an object"
}

// exactArgs wants n arguments, named names, as a usage error otherwise.
func exactArgs(n int, names ...string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		switch {
		case len(args) == n:
		case n == 0:
			return usagef("takes no arguments, got %q", strings.Join(args, " "))
		case len(args) < n:
			return usagef("missing %s", strings.Join(names[len(args):], " "))
		default:
			return usagef("want only %s, got %d arguments", strings.Join(names, " "), len(args))
		}
		return nil
	}
}

func kindCompletion(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
	var out []cobra.Completion
	for _, k := range client.Kinds {
		out = append(out, string(k))
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

func statusCompletion(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
	var out []cobra.Completion
	for _, s := range client.Statuses {
		out = append(out, string(s))
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}
