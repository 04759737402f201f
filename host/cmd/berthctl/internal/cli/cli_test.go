package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"go.uber.org/goleak"

	"github.com/berth-dev/berth/host/client"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// closedURL is where no API runs: a command that reaches the network by
// mistake fails with ExitUnreachable, not ExitUsage.
const closedURL = "http://127.0.0.1:1"

// runMain runs berthctl in the process, with env and stdin.
func runMain(t *testing.T, env map[string]string, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	if env == nil {
		env = map[string]string{EnvURL: closedURL}
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	var out, errw bytes.Buffer
	code = Main(context.Background(), args, lookup, strings.NewReader(stdin), &out, &errw)
	return code, out.String(), errw.String()
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"UnknownCommand", []string{"bogus"}, `unknown command "bogus"`},
		{"UnknownFlag", []string{"get", "--nope", "x"}, "unknown flag: --nope"},
		{"MissingID", []string{"get"}, "missing ID"},
		{"TwoIDs", []string{"stop", "a", "b"}, "want only ID"},
		{"ArgumentToList", []string{"list", "x"}, "takes no arguments"},
		{"BadOutput", []string{"-o", "yaml", "stats"}, `-o "yaml": want table or json`},
		{"BadTimeout", []string{"--timeout", "0s", "stats"}, "--timeout 0s"},
		{"BadTimeoutValue", []string{"--timeout", "soon", "stats"}, "invalid argument"},
		{"BadURL", []string{"--url", "localhost:9444", "stats"}, `base URL "localhost:9444"`},
		{"MissingSecretFile", []string{"--secret-file", "/does/not/exist", "list"}, "--secret-file"},
		{"ParamWithoutValue", []string{"submit", "DEMO", "-p", "image"}, `--param "image": want key=value`},
		{"ParamTwice", []string{"submit", "DEMO", "-p", "a=1", "-p", "a=2"}, "--param a is given twice"},
		{"EmptyName", []string{"submit", " "}, "NAME is empty"},
		{"BadKind", []string{"submit", "DEMO", "--kind", "Daily"}, `kind "Daily"`},
		{"DelayOnGeneric", []string{"submit", "DEMO", "--kind", "Generic", "--delay", "5"}, "--delay is for Scheduled jobs"},
		{"ScheduledWithoutDelay", []string{"submit", "DEMO", "--kind", "Scheduled"}, "needs --delay"},
		{"PeriodicWithoutCron", []string{"submit", "DEMO", "--kind", "Periodic"}, "needs --cron"},
		{"DelayAndCron", []string{"submit", "DEMO", "--delay", "5", "--cron", "* * * * * *"}, "do not go together"},
		{"WaitOnAPolicy", []string{"submit", "DEMO", "--cron", "* * * * * *", "--wait"}, "--wait does not go with a Periodic policy"},
		{"NegativeDelay", []string{"submit", "DEMO", "--delay", "-1"}, "invalid argument"},
		{"ParamsFileNotAnObject", []string{"submit", "DEMO", "--params-file", "-"}, "want a JSON object, got an array"},
		{"BadStatus", []string{"list", "--status", "Done"}, `status "Done"`},
		{"PageOfACursorListing", []string{"list", "--page", "2"}, "--page is for --kind Scheduled or Periodic"},
		{"CursorOfAPagedListing", []string{"list", "--kind", "Periodic", "--cursor", "5"}, "--cursor does not go with --kind Periodic"},
		{"FilterOfAPagedListing", []string{"list", "--kind", "Scheduled", "--name", "DEMO"}, "--status and --name"},
		{"BadCursor", []string{"list", "--cursor", "abc"}, `--cursor "abc"`},
		{"BadPageSize", []string{"list", "--page-size", "1001"}, "--page-size 1001"},
		{"BadMaxPages", []string{"executions", "x", "--max-pages", "0"}, "--max-pages 0"},
		{"BadInterval", []string{"watch", "x", "--interval", "0s"}, "--interval 0s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := runMain(t, nil, "[1]", tc.args...)
			if code != ExitUsage || stdout != "" {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d", code, stdout, stderr, ExitUsage)
			}
			if !strings.HasPrefix(stderr, "berthctl: ") || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, tc.want) ||
				!strings.Contains(stderr, "--help") {
				t.Fatalf("stderr %q: want one line with %q and a pointer to --help", stderr, tc.want)
			}
		})
	}
}

func TestHelpDocumentsTheExitCodes(t *testing.T) {
	t.Parallel()
	code, stdout, _ := runMain(t, nil, "", "--help")
	if code != ExitOK {
		t.Fatalf("--help: exit %d", code)
	}
	for _, c := range []int{ExitOK, ExitJobError, ExitJobStopped, ExitAPI, ExitUsage, ExitUnreachable, ExitInterrupted} {
		if !strings.Contains(stdout, fmt.Sprintf("\n  %-4d ", c)) {
			t.Errorf("--help does not document exit code %d:\n%s", c, stdout)
		}
	}
	code, stdout, _ = runMain(t, nil, "", "submit", "--help")
	if code != ExitOK || !strings.Contains(stdout, "--params-file") || !strings.Contains(stdout, "exits by it") {
		t.Errorf("submit --help: exit %d\n%s", code, stdout)
	}
}

func TestAnUnreachableURLIsNamed(t *testing.T) {
	t.Parallel()
	code, _, stderr := runMain(t, nil, "", "get", "0123456789abcdef01234567")
	if code != ExitUnreachable || !strings.Contains(stderr, closedURL+"/api/v1/jobs/0123456789abcdef01234567") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}

func TestBuildRequest(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "params.json")
	if err := os.WriteFile(file, []byte(`{"image":"demo","n":12345678901234567890,"nested":{"a":[1,2]}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		args  []string
		stdin string
		want  string // the request's JSON
	}{
		{"Generic", []string{"DEMO"},
			"", `{"name":"DEMO","parameters":null,"status_hook":"","metadata":{"kind":"Generic","unique":false}}`},
		{"JSONValuesAndStrings", []string{"DEMO", "-p", "image=demo", "-p", "hold=5", "-p", "fail=true", "-p", "n=null",
			"-p", `s="5"`, "-p", "list=[1,2]", "-p", "word=True", "-p", "empty=", "-p", "eq=a=b", "-p", "two=1 2"},
			"", `{"name":"DEMO","parameters":{"empty":"","eq":"a=b","fail":true,"hold":5,"image":"demo","list":[1,2],"n":null,"s":"5","two":"1 2","word":"True"},"status_hook":"","metadata":{"kind":"Generic","unique":false}}`},
		{"FileThenFlags", []string{"DEMO", "--params-file", file, "-p", "image=demo2"},
			"", `{"name":"DEMO","parameters":{"image":"demo2","n":12345678901234567890,"nested":{"a":[1,2]}},"status_hook":"","metadata":{"kind":"Generic","unique":false}}`},
		{"Stdin", []string{"DEMO", "--params-file", "-"},
			` {"image":"demo"} `, `{"name":"DEMO","parameters":{"image":"demo"},"status_hook":"","metadata":{"kind":"Generic","unique":false}}`},
		{"DelayMeansScheduled", []string{"DEMO", "--delay", "30", "--unique", "--hook", "http://core/hook"},
			"", `{"name":"DEMO","parameters":null,"status_hook":"http://core/hook","metadata":{"kind":"Scheduled","schedule_delay":30,"unique":true}}`},
		{"CronMeansPeriodic", []string{"DEMO", "--cron", " 0 */5 * * * * "},
			"", `{"name":"DEMO","parameters":null,"status_hook":"","metadata":{"kind":"Periodic","cron_spec":"0 */5 * * * *","unique":false}}`},
		{"KindInAnyCase", []string{"DEMO", "--kind", "periodic", "--cron", "0 0 0 1 1 *"},
			"", `{"name":"DEMO","parameters":null,"status_hook":"","metadata":{"kind":"Periodic","cron_spec":"0 0 0 1 1 *","unique":false}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var f submitFlags
			cmd := &cobra.Command{}
			f.register(cmd)
			if err := cmd.ParseFlags(tc.args); err != nil {
				t.Fatal(err)
			}
			args := cmd.Flags().Args()
			req, err := buildRequest(args[0], f, cmd.Flags().Changed, strings.NewReader(tc.stdin))
			if err != nil {
				t.Fatal(err)
			}
			got, err := json.Marshal(req)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Fatalf("request\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	apiErr := &client.APIError{Status: http.StatusConflict, ErrorBody: client.ErrorBody{Code: 10016, Message: "the action does not fit",
		Details: "job x is\nStopped"}}
	for _, tc := range []struct {
		name   string
		ctx    context.Context
		secret string
		err    error
		code   int
		msg    string
	}{
		{"Nil", nil, "s", nil, ExitOK, ""},
		{"Success", nil, "s", &endedError{status: client.Success}, ExitOK, ""},
		{"Error", nil, "s", &endedError{status: client.Error}, ExitJobError, ""},
		{"Stopped", nil, "s", &endedError{status: client.Stopped}, ExitJobStopped, ""},
		{"APIError", nil, "s", remote(fmt.Errorf("wrapped: %w", apiErr)), ExitAPI,
			"the API answered 409 Conflict (code 10016): the action does not fit: job x is\nStopped"},
		{"Unauthorized", nil, "", remote(&client.APIError{Status: 401, ErrorBody: client.ErrorBody{Code: 10011, Message: "unauthorized", Details: "missing"}}), ExitAPI,
			"the API answered 401 Unauthorized (code 10011): unauthorized: missing; no secret was sent: set CORE_SECRET or --secret-file"},
		{"NotJSON", nil, "s", remote(errors.New("client: GET /jobs: the answer is not the JSON expected")), ExitAPI,
			"client: GET /jobs: the answer is not the JSON expected"},
		{"Refused", nil, "s", remote(&url.Error{Op: "Get", URL: "http://h:1/api/v1/stats", Err: errors.New("connection refused")}), ExitUnreachable,
			"cannot reach the API at http://h:1/api/v1/stats: connection refused"},
		{"Timeout", nil, "s", remote(&url.Error{Op: "Get", URL: "http://h:1/api/v1/stats", Err: timeoutError{}}), ExitUnreachable,
			"no answer from http://h:1/api/v1/stats within 30s (--timeout)"},
		{"Interrupted", cancelled, "s", remote(&url.Error{Op: "Get", URL: "http://h:1/x", Err: context.Canceled}), ExitInterrupted, "interrupted"},
		{"InterruptedWait", cancelled, "s", context.Canceled, ExitInterrupted, "interrupted"},
		{"Usage", nil, "s", usagef("bad %s", "flag"), ExitUsage, "bad flag"},
		{"Other", nil, "s", errors.New("write /dev/full: no space"), ExitUsage, "write /dev/full: no space"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := tc.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			a := &app{secret: tc.secret, timeout: DefaultTimeout}
			code, msg := a.classify(ctx, tc.err)
			if code != tc.code || msg != tc.msg {
				t.Fatalf("classify = %d %q, want %d %q", code, msg, tc.code, tc.msg)
			}
		})
	}
	if got := oneLine("a\nb\r\n  c"); got != "a b c" {
		t.Errorf("oneLine = %q", got)
	}
}

type timeoutError struct{}

func (timeoutError) Error() string { return "timeout" }
func (timeoutError) Timeout() bool { return true }

func TestReadSecret(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name, file, env, want, err string
	}{
		{"Env", "", " from-env\n", "from-env", ""},
		{"NoSecret", "", "", "", ""},
		{"FileWins", write("a", "from-file\nsecond line\n"), "from-env", "from-file", ""},
		{"EmptyFile", write("b", "\n"), "from-env", "", "the first line is empty"},
		{"MissingFile", filepath.Join(dir, "none"), "", "", "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := &app{secretFile: tc.file, env: func(k string) (string, bool) { return tc.env, k == EnvSecret && tc.env != "" }}
			got, err := a.readSecret()
			if got != tc.want || (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("readSecret = %q, %v; want %q, %q", got, err, tc.want, tc.err)
			}
		})
	}
}

func TestLogTail(t *testing.T) {
	t.Parallel()
	// line is a line of the log, longer than the head that matches a window.
	line := func(n int) string { return fmt.Sprintf("%03d %s\n", n, strings.Repeat("-", logHead)) }
	lines := func(from, to int) string {
		var b strings.Builder
		for n := from; n <= to; n++ {
			b.WriteString(line(n))
		}
		return b.String()
	}
	for _, tc := range []struct {
		name  string
		reads []string
		want  []string // what each read prints
		gaps  []bool
	}{
		{"Grows", []string{"", "a\n", "a\nb\n", "a\nb\n", "a\nb\nc"}, []string{"", "a\n", "b\n", "", "c"}, nil},
		{"WindowMoves", []string{lines(1, 3), lines(2, 4), lines(3, 6), lines(4, 6)},
			[]string{lines(1, 3), line(4), lines(5, 6), ""}, nil},
		{"RepeatedLines", []string{"x\nx\nx\n", "x\nx\nx\ny\n"}, []string{"x\nx\nx\n", "y\n"}, nil},
		{"WindowMovesPastAll", []string{lines(1, 3), lines(7, 8)}, []string{lines(1, 3), lines(7, 8)}, []bool{false, true}},
		{"LogGone", []string{"a\n", ""}, []string{"a\n", ""}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var tl logTail
			for i, r := range tc.reads {
				got, gap := tl.next([]byte(r))
				wantGap := tc.gaps != nil && tc.gaps[i]
				if string(got) != tc.want[i] || gap != wantGap {
					t.Fatalf("read %d (%q): %q gap %v, want %q gap %v", i, r, got, gap, tc.want[i], wantGap)
				}
			}
		})
	}
}

func TestPagedMore(t *testing.T) {
	t.Parallel()
	jobs := func(n int) []*client.Stats { return make([]*client.Stats, n) }
	for _, tc := range []struct {
		page   *client.Page
		n      int
		size   int
		expect bool
	}{
		{&client.Page{Jobs: jobs(2), Total: 5}, 1, 2, true},
		{&client.Page{Jobs: jobs(2), Total: 5}, 2, 2, true},
		{&client.Page{Jobs: jobs(1), Total: 5}, 3, 2, false},
		{&client.Page{Jobs: jobs(2), Total: 4}, 2, 2, false},
		{&client.Page{Jobs: jobs(0), Total: 9}, 7, 2, false},
		{&client.Page{Jobs: jobs(2), Total: -1}, 1, 2, false},
	} {
		if got := pagedMore(tc.page, tc.n, tc.size); got != tc.expect {
			t.Errorf("pagedMore(%d jobs of %d, page %d of %d) = %v", len(tc.page.Jobs), tc.page.Total, tc.n, tc.size, got)
		}
	}
}

func TestWatchLines(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	a := &app{stdout: &out, output: outputTable}
	steps := []*client.Stats{
		{Status: client.Pending, Revision: 7, UpdateTime: 1_700_000_000},
		{Status: client.Running, Revision: 7, UpdateTime: 1_700_000_001, CheckIn: "half\nway", CheckInAt: 1_700_000_002},
		{Status: client.Error, Revision: 7, UpdateTime: 1_700_000_003, CheckIn: "half\nway", CheckInAt: 1_700_000_002},
		{Status: client.Running, Revision: 9, UpdateTime: 1_700_000_010},
	}
	var prev *client.Stats
	for _, st := range steps {
		if err := a.showChange(st, prev); err != nil {
			t.Fatal(err)
		}
		prev = st
	}
	want := "2023-11-14T22:13:20Z  Pending\n" +
		"2023-11-14T22:13:22Z  Running    half way\n" +
		"2023-11-14T22:13:23Z  Error      half way\n" +
		"2023-11-14T22:13:30Z  Running    (a new run)\n"
	if out.String() != want {
		t.Fatalf("watch printed\n%s\nwant\n%s", out.String(), want)
	}
	if changed(steps[1], steps[1]) || !changed(steps[1], steps[2]) {
		t.Error("changed is wrong")
	}
}
