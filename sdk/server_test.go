package sdk

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/berth-dev/berth/sdk/proto"
)

// testJob is a Job whose behaviour each test sets.
type testJob struct {
	maxFails uint
	retry    bool
	validate func(Parameters) error
	run      func(Context, Parameters) error
}

func (j testJob) MaxFails() uint    { return j.maxFails }
func (j testJob) ShouldRetry() bool { return j.retry }

func (j testJob) Validate(p Parameters) error {
	if j.validate == nil {
		return nil
	}
	return j.validate(p)
}

func (j testJob) Run(ctx Context, p Parameters) error {
	if j.run == nil {
		return nil
	}
	return j.run(ctx, p)
}

type limitedJob struct {
	testJob
	limit uint
}

func (j limitedJob) MaxConcurrency() uint { return j.limit }

type versionedJob struct {
	testJob
	version string
}

func (j versionedJob) Version() string { return j.version }

type limitedVersionedJob struct {
	limitedJob
	version string
}

func (j limitedVersionedJob) Version() string { return j.version }

// blockingJob runs until its context ends; started gets its Context when it
// runs, and ended what it saw when its context ended.
type blockingJob struct {
	testJob
	started chan Context
	ended   chan jobEnd
}

type jobEnd struct {
	cmd   OPCommand
	ok    bool
	cause error
}

func newBlockingJob(ret error) blockingJob {
	j := blockingJob{started: make(chan Context, 1), ended: make(chan jobEnd, 1)}
	j.run = func(ctx Context, _ Parameters) error {
		j.started <- ctx
		<-ctx.Done()
		cmd, ok := ctx.OPCommand()
		j.ended <- jobEnd{cmd: cmd, ok: ok, cause: context.Cause(ctx)}
		return ret
	}
	return j
}

// runAsync calls s.Run in a goroutine; the channel gets its answer.
func runAsync(ctx context.Context, s *server, req *proto.RunRequest) <-chan runResult {
	res := make(chan runResult, 1)
	go func() {
		resp, err := s.Run(ctx, req)
		res <- runResult{resp, err}
	}()
	return res
}

type runResult struct {
	resp *proto.RunResponse
	err  error
}

func TestServerDescribe(t *testing.T) {
	t.Parallel()
	jobs := Jobs{
		"PLAIN":     testJob{maxFails: 3, retry: true},
		"LIMITED":   limitedJob{testJob: testJob{maxFails: 1}, limit: 5},
		"VERSIONED": versionedJob{testJob: testJob{retry: true}, version: "1.2.3"},
		"BOTH":      limitedVersionedJob{limitedJob: limitedJob{limit: 2}, version: "v9"},
	}
	for i := range 8 {
		jobs[fmt.Sprintf("EXTRA_%d", i)] = testJob{}
	}
	resp, err := newServer(jobs).Describe(context.Background(), &proto.DescribeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetSdkVersion() != sdkVersion {
		t.Errorf("SdkVersion = %q, want %q", resp.GetSdkVersion(), sdkVersion)
	}
	type jobType struct {
		name           string
		maxFails       uint32
		retry          bool
		maxConcurrency uint32
		version        string
	}
	byName := map[string]jobType{
		"PLAIN":     {"PLAIN", 3, true, 0, ""},
		"LIMITED":   {"LIMITED", 1, false, 5, ""},
		"VERSIONED": {"VERSIONED", 0, true, 0, "1.2.3"},
		"BOTH":      {"BOTH", 0, false, 2, "v9"},
	}
	if len(resp.GetJobs()) != len(jobs) {
		t.Fatalf("Describe lists %d jobs, want %d", len(resp.GetJobs()), len(jobs))
	}
	for i, jt := range resp.GetJobs() {
		if i > 0 && resp.GetJobs()[i-1].GetName() >= jt.GetName() {
			t.Errorf("jobs are not sorted: %q before %q", resp.GetJobs()[i-1].GetName(), jt.GetName())
		}
		want, ok := byName[jt.GetName()]
		if !ok {
			want = jobType{name: jt.GetName()}
		}
		got := jobType{jt.GetName(), jt.GetMaxFails(), jt.GetShouldRetry(), jt.GetMaxConcurrency(), jt.GetVersion()}
		if got != want {
			t.Errorf("job type = %+v, want %+v", got, want)
		}
	}
}

func TestServerValidate(t *testing.T) {
	t.Parallel()
	// The job accepts exactly {"n": 1}, numbers arriving as float64.
	job := testJob{validate: func(p Parameters) error {
		if p == nil {
			return errors.New("nil parameters")
		}
		switch n := p["n"].(type) {
		case nil:
			if len(p) != 0 {
				return fmt.Errorf("unexpected parameters %v", p)
			}
			return nil
		case float64:
			if n == 1 {
				return nil
			}
			return fmt.Errorf("parameter n must be 1, not %v", n)
		case string:
			panic("n is a string")
		default:
			return fmt.Errorf("parameter n has type %T", n)
		}
	}}
	s := newServer(Jobs{"JOB": job})
	tests := []struct {
		name      string
		jobName   string
		params    string
		wantCode  codes.Code
		wantError string
	}{
		{name: "Valid", jobName: "JOB", params: `{"n":1}`},
		{name: "NoParameters", jobName: "JOB"},
		{name: "NullParameters", jobName: "JOB", params: `null`},
		{name: "EmptyObject", jobName: "JOB", params: `{}`},
		{name: "Rejected", jobName: "JOB", params: `{"n":2}`, wantError: "parameter n must be 1, not 2"},
		{name: "Panics", jobName: "JOB", params: `{"n":"one"}`, wantError: "Validate panicked: n is a string"},
		{name: "UnknownJob", jobName: "NOPE", params: `{}`, wantCode: codes.NotFound},
		{name: "ArrayParameters", jobName: "JOB", params: `[1,2]`, wantCode: codes.InvalidArgument},
		{name: "NumberParameters", jobName: "JOB", params: `42`, wantCode: codes.InvalidArgument},
		{name: "BrokenJSON", jobName: "JOB", params: `{"n":`, wantCode: codes.InvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var raw []byte
			if tc.params != "" {
				raw = []byte(tc.params)
			}
			resp, err := s.Validate(context.Background(), &proto.ValidateRequest{JobName: tc.jobName, Parameters: raw})
			if code := status.Code(err); code != tc.wantCode {
				t.Fatalf("Validate error = %v (code %v), want code %v", err, code, tc.wantCode)
			}
			if err != nil {
				return
			}
			if resp.GetError() != tc.wantError {
				t.Errorf("ValidateResponse.Error = %q, want %q", resp.GetError(), tc.wantError)
			}
		})
	}
}

func TestServerRun(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		run          func(Context, Parameters) error
		jobName      string
		params       string
		wantCode     codes.Code
		wantError    string
		wantPanicked bool
	}{
		{name: "Success", run: func(Context, Parameters) error { return nil }},
		{name: "Error", run: func(Context, Parameters) error { return errors.New("registry unreachable") },
			wantError: "registry unreachable"},
		{name: "ErrorWithoutMessage", run: func(Context, Parameters) error { return errors.New("") },
			wantError: "job returned an error with no message (*errors.errorString)"},
		{name: "Panic", run: func(Context, Parameters) error { panic("index out of range") },
			wantError: "Run panicked: index out of range", wantPanicked: true},
		{name: "PanicWithError", run: func(Context, Parameters) error { panic(fmt.Errorf("wrapped: %w", errors.ErrUnsupported)) },
			wantError: "Run panicked: wrapped: unsupported operation", wantPanicked: true},
		{name: "ParametersAndIdentity", params: `{"n":1,"s":"x"}`, run: func(ctx Context, p Parameters) error {
			if ctx.JobID() != "J1" {
				return fmt.Errorf("JobID = %q", ctx.JobID())
			}
			if v, ok := ctx.Property("region"); !ok || v != "eu" {
				return fmt.Errorf("Property(region) = %q, %v", v, ok)
			}
			if p["n"] != 1.0 || p["s"] != "x" {
				return fmt.Errorf("parameters = %#v", p)
			}
			return nil
		}},
		{name: "UnknownJob", jobName: "NOPE", wantCode: codes.NotFound},
		{name: "ParametersNotObject", params: `"x"`, wantCode: codes.InvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(Jobs{"JOB": testJob{run: tc.run}})
			name := tc.jobName
			if name == "" {
				name = "JOB"
			}
			resp, err := s.Run(context.Background(), &proto.RunRequest{JobName: name, JobId: "J1",
				Parameters: []byte(tc.params), Properties: map[string]string{"region": "eu"}})
			if code := status.Code(err); code != tc.wantCode {
				t.Fatalf("Run error = %v (code %v), want code %v", err, code, tc.wantCode)
			}
			if err != nil {
				return
			}
			if resp.GetError() != tc.wantError || resp.GetPanicked() != tc.wantPanicked {
				t.Errorf("RunResponse = {Error: %q, Panicked: %v}, want {Error: %q, Panicked: %v}",
					resp.GetError(), resp.GetPanicked(), tc.wantError, tc.wantPanicked)
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			if len(s.running) != 0 {
				t.Errorf("%d jobs still registered as running", len(s.running))
			}
		})
	}
}

func TestServerRunRefusesDuplicateID(t *testing.T) {
	t.Parallel()
	job := newBlockingJob(nil)
	s := newServer(Jobs{"JOB": job})
	req := &proto.RunRequest{JobName: "JOB", JobId: "J1"}
	first := runAsync(context.Background(), s, req)
	receive(t, job.started, "the first run to start")

	if _, err := s.Run(context.Background(), req); status.Code(err) != codes.AlreadyExists {
		t.Errorf("a second Run of J1 = %v, want code AlreadyExists", err)
	}
	other := runAsync(context.Background(), s, &proto.RunRequest{JobName: "JOB", JobId: "J2"})
	receive(t, job.started, "a run of another ID")
	signal(t, s, "J2", proto.OPCommand_OP_COMMAND_STOP)
	receive(t, job.ended, "J2 to end")
	if r := receive(t, other, "J2's answer"); r.err != nil {
		t.Errorf("Run of J2 = %v", r.err)
	}

	signal(t, s, "J1", proto.OPCommand_OP_COMMAND_STOP)
	receive(t, job.ended, "J1 to end")
	if r := receive(t, first, "J1's answer"); r.err != nil {
		t.Fatalf("first Run of J1 = %v", r.err)
	}

	// Once ended, the ID may run again.
	again := runAsync(context.Background(), s, req)
	receive(t, job.started, "J1 to run again")
	signal(t, s, "J1", proto.OPCommand_OP_COMMAND_CANCEL)
	receive(t, job.ended, "J1 to end again")
	if r := receive(t, again, "J1's second answer"); r.err != nil {
		t.Errorf("Run of J1 after the first ended = %v", r.err)
	}
}

func TestServerRunNilErrorAfterEnd(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		end       func(t *testing.T, s *server, cancel context.CancelFunc)
		wantError string
	}{
		{"Stopped", func(t *testing.T, s *server, _ context.CancelFunc) {
			signal(t, s, "J1", proto.OPCommand_OP_COMMAND_STOP)
		}, errStopped.Error()},
		{"Cancelled", func(t *testing.T, s *server, _ context.CancelFunc) {
			signal(t, s, "J1", proto.OPCommand_OP_COMMAND_CANCEL)
		}, errCancelled.Error()},
		{"HostEndedCall", func(_ *testing.T, _ *server, cancel context.CancelFunc) { cancel() },
			context.Canceled.Error()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			job := newBlockingJob(nil)
			s := newServer(Jobs{"JOB": job})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			res := runAsync(ctx, s, &proto.RunRequest{JobName: "JOB", JobId: "J1"})
			receive(t, job.started, "the run to start")
			tc.end(t, s, cancel)
			receive(t, job.ended, "the run to end")
			r := receive(t, res, "Run's answer")
			if r.err != nil {
				t.Fatal(r.err)
			}
			if r.resp.GetError() != tc.wantError || r.resp.GetPanicked() {
				t.Errorf("RunResponse = {Error: %q, Panicked: %v}, want {Error: %q}",
					r.resp.GetError(), r.resp.GetPanicked(), tc.wantError)
			}
		})
	}
}

// signal sends a Signal that must find the job.
func signal(t *testing.T, s *server, id string, cmd proto.OPCommand) {
	t.Helper()
	resp, err := s.Signal(context.Background(), &proto.SignalRequest{JobId: id, Command: cmd})
	if err != nil {
		t.Fatalf("Signal(%s, %v) = %v", id, cmd, err)
	}
	if !resp.GetFound() {
		t.Fatalf("Signal(%s, %v) did not find the job", id, cmd)
	}
}

func TestServerSignal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		cmd       proto.OPCommand
		wantCmd   OPCommand
		wantCause error
	}{
		{"Stop", proto.OPCommand_OP_COMMAND_STOP, OPStop, errStopped},
		{"Cancel", proto.OPCommand_OP_COMMAND_CANCEL, OPCancel, errCancelled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			job := newBlockingJob(errors.New("ended"))
			s := newServer(Jobs{"JOB": job})
			res := runAsync(context.Background(), s, &proto.RunRequest{JobName: "JOB", JobId: "J1"})
			receive(t, job.started, "the run to start")

			resp, err := s.Signal(context.Background(), &proto.SignalRequest{JobId: "J2", Command: tc.cmd})
			if err != nil || resp.GetFound() {
				t.Errorf("Signal of an unknown ID = %v, %v; want Found=false", resp, err)
			}
			signal(t, s, "J1", tc.cmd)

			end := receive(t, job.ended, "the run to end")
			if end.cmd != tc.wantCmd || !end.ok || end.cause != tc.wantCause {
				t.Errorf("the job saw OPCommand %q, %v and cause %v; want %q, true and %v",
					end.cmd, end.ok, end.cause, tc.wantCmd, tc.wantCause)
			}
			if r := receive(t, res, "Run's answer"); r.err != nil || r.resp.GetError() != "ended" {
				t.Errorf("Run = %v, %v", r.resp, r.err)
			}
			if resp, err := s.Signal(context.Background(), &proto.SignalRequest{JobId: "J1", Command: tc.cmd}); err != nil || resp.GetFound() {
				t.Errorf("Signal of an ended job = %v, %v; want Found=false", resp, err)
			}
		})
	}
}

func TestServerSignalUnknownCommand(t *testing.T) {
	t.Parallel()
	s := newServer(Jobs{"JOB": testJob{}})
	_, err := s.Signal(context.Background(), &proto.SignalRequest{JobId: "J1"})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("Signal without a command = %v, want code InvalidArgument", err)
	}
}

func TestServerAttachWithoutBroker(t *testing.T) {
	t.Parallel()
	s := newServer(Jobs{"JOB": testJob{}})
	_, err := s.Attach(context.Background(), &proto.AttachRequest{BrokerId: 1})
	if status.Code(err) != codes.FailedPrecondition {
		t.Errorf("Attach without a broker = %v, want code FailedPrecondition", err)
	}
}

func TestServerCallbacksWithoutAttach(t *testing.T) {
	t.Parallel()
	type calls struct{ checkin, launch error }
	got := make(chan calls, 1)
	s := newServer(Jobs{"JOB": testJob{run: func(ctx Context, _ Parameters) error {
		ctx.Logger().Info("nobody reads this")
		_, launchErr := ctx.LaunchJob(JobRequest{Name: "SUB"})
		got <- calls{checkin: ctx.Checkin("half way"), launch: launchErr}
		return nil
	}}})
	resp, err := s.Run(context.Background(), &proto.RunRequest{JobName: "JOB", JobId: "J1"})
	if err != nil || resp.GetError() != "" {
		t.Fatalf("Run = %v, %v", resp, err)
	}
	c := receive(t, got, "the job's calls")
	if !errors.Is(c.checkin, errNotAttached) {
		t.Errorf("Checkin = %v, want it to wrap errNotAttached", c.checkin)
	}
	if !errors.Is(c.launch, errNotAttached) {
		t.Errorf("LaunchJob = %v, want it to wrap errNotAttached", c.launch)
	}
}

func TestDecodeParameters(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		raw     string
		want    string // fmt of the result
		wantErr bool
	}{
		{name: "Empty", raw: "", want: "map[]"},
		{name: "Null", raw: "null", want: "map[]"},
		{name: "EmptyObject", raw: "{}", want: "map[]"},
		{name: "Object", raw: `{"n":1,"o":{"a":[true]},"s":"x"}`, want: "map[n:1 o:map[a:[true]] s:x]"},
		{name: "Array", raw: `[1]`, wantErr: true},
		{name: "String", raw: `"x"`, wantErr: true},
		{name: "Number", raw: `1`, wantErr: true},
		{name: "Broken", raw: `{`, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var raw []byte
			if tc.raw != "" {
				raw = []byte(tc.raw)
			}
			p, err := decodeParameters(raw)
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), "not a JSON object") {
					t.Errorf("decodeParameters(%q) = %v, %v; want a not-a-JSON-object error", tc.raw, p, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p == nil {
				t.Fatalf("decodeParameters(%q) = nil, want a non-nil map", tc.raw)
			}
			if got := fmt.Sprint(p); got != tc.want {
				t.Errorf("decodeParameters(%q) = %s, want %s", tc.raw, got, tc.want)
			}
			if n, ok := p["n"]; ok {
				if _, isFloat := n.(float64); !isFloat {
					t.Errorf("a number decoded as %T, want float64", n)
				}
			}
		})
	}
}
