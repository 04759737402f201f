package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/host/client"
)

// Exit codes of berthctl.
const (
	// ExitOK: the command did what it was asked; for watch and
	// submit --wait, the job ended Success.
	ExitOK = 0
	// ExitJobError: the job that watch or submit --wait followed ended Error.
	ExitJobError = 1
	// ExitJobStopped: the job that watch or submit --wait followed ended
	// Stopped.
	ExitJobStopped = 2
	// ExitAPI: the API refused the request (its message and details are on
	// stderr) or answered something that is not its API.
	ExitAPI = 3
	// ExitUsage: the command line is wrong (unknown command or flag, wrong
	// arguments or values, an unreadable file).
	ExitUsage = 4
	// ExitUnreachable: no answer from the API (connection refused, name
	// not found, TLS, timeout).
	ExitUnreachable = 5
	// ExitInterrupted: SIGINT or SIGTERM ended the command.
	ExitInterrupted = 130
)

// Defaults of the global flags.
const (
	DefaultURL     = "http://127.0.0.1:9444"
	DefaultTimeout = 30 * time.Second
)

// Environment variables berthctl reads.
const (
	EnvURL    = "BERTH_URL"
	EnvSecret = "CORE_SECRET"
)

// Output formats.
const (
	outputTable = "table"
	outputJSON  = "json"
)

const rootLong = `berthctl drives a Berth job service (or a Harbor job service) through its
REST API: submit jobs, read their stats and logs, follow them, stop them.

The API's URL is --url, or $BERTH_URL, or ` + DefaultURL + `.
The secret (Harbor's CORE_SECRET) is $CORE_SECRET, or the first line of the
file named by --secret-file, which wins. There is no flag for the secret
itself: a command line is visible to every user of the machine.

-o json prints the API's own JSON answers, one per line; -o table (the
default) prints tables for people.

Exit codes:
  0    done; for watch and submit --wait: the job ended Success
  1    the job ended Error (watch, submit --wait)
  2    the job ended Stopped (watch, submit --wait)
  3    the API refused the request (its message on stderr) or answered
       something unexpected
  4    usage: unknown command or flag, wrong arguments, unreadable file
  5    the API could not be reached (the URL tried is on stderr)
  130  interrupted (SIGINT, SIGTERM)`

// Main runs berthctl with args (without the program name) and returns its
// exit code. env looks up environment variables; ctx ends on a signal.
func Main(ctx context.Context, args []string, env func(string) (string, bool), stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{env: env, stdin: stdin, stdout: stdout, stderr: stderr}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	code, msg := a.classify(ctx, err)
	if msg != "" {
		if code == ExitUsage && cmd != nil {
			msg += fmt.Sprintf(` (see "%s --help")`, cmd.CommandPath())
		}
		fmt.Fprintln(stderr, "berthctl: "+oneLine(msg))
	}
	return code
}

// app is one run of berthctl.
type app struct {
	env            func(string) (string, bool)
	stdin          io.Reader
	stdout, stderr io.Writer

	url        string
	secretFile string
	timeout    time.Duration
	output     string

	secret string
	api    *client.Client
	last   *client.Answer // the last answer, for -o json
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "berthctl",
		Short:         "The command line of a Berth job service",
		Long:          rootLong,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usage(err) })
	defURL := DefaultURL
	if v, ok := a.env(EnvURL); ok && v != "" {
		defURL = v
	}
	pf := root.PersistentFlags()
	pf.StringVar(&a.url, "url", defURL, "URL of the API (env "+EnvURL+")")
	pf.StringVar(&a.secretFile, "secret-file", "", "file holding the API secret (default: env "+EnvSecret+")")
	pf.DurationVar(&a.timeout, "timeout", DefaultTimeout, "time limit of each API call")
	pf.StringVarP(&a.output, "output", "o", outputTable, "output format: table or json")
	must(root.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(
		[]cobra.Completion{outputTable, outputJSON}, cobra.ShellCompDirectiveNoFileComp)))
	root.AddCommand(a.submitCommand(), a.getCommand(), a.listCommand(), a.logCommand(),
		a.actionCommand(client.ActionStop, "Stop a job (or a periodic policy and its executions)"),
		a.actionCommand(client.ActionCancel, "Cancel a job: it ends Stopped and its plugin sees a cancel"),
		a.actionCommand(client.ActionRetry, "Run a job in Error again at once, under the same ID"),
		a.executionsCommand(), a.watchCommand(), a.statsCommand(), a.configCommand())
	return root
}

// must panics on a programming error of the command tree.
func must(err error) {
	if err != nil {
		panic(err)
	}
}

// client returns the API client, made on first use from the global flags.
func (a *app) client() (*client.Client, error) {
	if a.api != nil {
		return a.api, nil
	}
	if a.output != outputTable && a.output != outputJSON {
		return nil, usage(fmt.Errorf("-o %q: want table or json", a.output))
	}
	if a.timeout <= 0 {
		return nil, usage(fmt.Errorf("--timeout %s: want a positive duration", a.timeout))
	}
	secret, err := a.readSecret()
	if err != nil {
		return nil, usage(err)
	}
	a.secret = secret
	c, err := client.New(a.url, secret,
		client.WithHTTPClient(&http.Client{Timeout: a.timeout}),
		client.WithAnswerHook(func(ans *client.Answer) { a.last = ans }))
	if err != nil {
		return nil, usage(fmt.Errorf("--url: %w", err))
	}
	a.api = c
	return c, nil
}

// readSecret reads the secret from --secret-file, else from CORE_SECRET.
func (a *app) readSecret() (string, error) {
	if a.secretFile == "" {
		v, _ := a.env(EnvSecret)
		return strings.TrimSpace(v), nil
	}
	raw, err := os.ReadFile(a.secretFile)
	if err != nil {
		return "", fmt.Errorf("--secret-file: %w", err)
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	if line = strings.TrimSpace(line); line == "" {
		return "", fmt.Errorf("--secret-file %s: the first line is empty", a.secretFile)
	}
	return line, nil
}

// json tells whether the output is the API's JSON.
func (a *app) json() bool { return a.output == outputJSON }

// printLast prints the body of the last answer, for -o json.
func (a *app) printLast() error {
	if a.last == nil {
		return nil
	}
	return a.printRaw(a.last.Body)
}

// printRaw prints one JSON document on its own line.
func (a *app) printRaw(b []byte) error {
	b = []byte(strings.TrimRight(string(b), "\r\n"))
	_, err := fmt.Fprintf(a.stdout, "%s\n", b)
	return err
}

// usageError is a wrong command line.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usage(err error) error { return &usageError{err: err} }

func usagef(format string, args ...any) error { return usage(fmt.Errorf(format, args...)) }

// remoteError is the failure of an API call.
type remoteError struct{ err error }

func (e *remoteError) Error() string { return e.err.Error() }
func (e *remoteError) Unwrap() error { return e.err }

// remote marks err (when not nil) as the failure of an API call.
func remote(err error) error {
	if err == nil {
		return nil
	}
	return &remoteError{err: err}
}

// endedError ends watch and submit --wait with the job's final status.
type endedError struct{ status client.Status }

func (e *endedError) Error() string { return "the job ended " + string(e.status) }

// classify maps the outcome of a command to an exit code and the line to
// show on stderr ("" for none).
func (a *app) classify(ctx context.Context, err error) (int, string) {
	var (
		ended  *endedError
		rem    *remoteError
		apiErr *client.APIError
		urlErr *url.Error
	)
	switch {
	case err == nil:
		return ExitOK, ""
	case errors.As(err, &ended):
		switch ended.status {
		case client.Success:
			return ExitOK, ""
		case client.Stopped:
			return ExitJobStopped, ""
		}
		return ExitJobError, ""
	case ctx.Err() != nil && errors.Is(err, context.Canceled):
		return ExitInterrupted, "interrupted"
	case errors.As(err, &rem) && errors.As(err, &apiErr):
		return ExitAPI, a.apiMessage(apiErr)
	case errors.As(err, &rem) && errors.As(err, &urlErr):
		if urlErr.Timeout() {
			return ExitUnreachable, fmt.Sprintf("no answer from %s within %s (--timeout)", urlErr.URL, a.timeout)
		}
		return ExitUnreachable, fmt.Sprintf("cannot reach the API at %s: %v", urlErr.URL, urlErr.Err)
	case errors.As(err, &rem):
		return ExitAPI, err.Error()
	}
	return ExitUsage, err.Error()
}

// apiMessage is the line that shows an error answer of the API.
func (a *app) apiMessage(e *client.APIError) string {
	msg := fmt.Sprintf("the API answered %d %s", e.Status, http.StatusText(e.Status))
	if e.Code != 0 {
		msg += fmt.Sprintf(" (code %d)", e.Code)
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.Details != "" {
		msg += ": " + e.Details
	}
	if e.Status == http.StatusUnauthorized && a.secret == "" {
		msg += "; no secret was sent: set " + EnvSecret + " or --secret-file"
	}
	return msg
}

// oneLine puts a message on one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
