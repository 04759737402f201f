package hook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/berth-dev/berth/host/internal/backoff"
	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/store"
)

// Rewrite replaces the prefix From of hook URLs with To at delivery time
// (the receiver moved; stored jobs keep their URLs).
type Rewrite struct{ From, To string }

// Options configure a Deliverer.
type Options struct {
	Store *store.Store
	// Workers is the number of deliveries in flight per host (default 8).
	Workers int
	// Timeout bounds one delivery (default 10s).
	Timeout time.Duration
	// BackoffBase and BackoffMax bound the wait before the next attempt of
	// a failed event: base doubling per failure, up to max, with jitter
	// (defaults 1s and 5m).
	BackoffBase, BackoffMax time.Duration
	Rewrites                []Rewrite
	// Client sends the requests (default: proxies from the environment,
	// keep-alive, Timeout per request).
	Client *http.Client
	Logger hclog.Logger
	// MaxIdleWait bounds the sleep of the one worker that polls when
	// nothing is due (default 5s); new events wake a worker at once
	// through Kick, so the wait matters only for a lost pub/sub message.
	MaxIdleWait time.Duration
	// BreakerThreshold is the number of consecutive failures after which
	// an endpoint is skipped for a backoff (default 3); BreakerEndpoints
	// bounds the endpoints remembered (default 1024).
	BreakerThreshold, BreakerEndpoints int
}

// Deliverer delivers hook events.
type Deliverer struct {
	opts      Options
	ownClient bool // the client is the deliverer's: Stop closes its connections
	log       hclog.Logger
	retry     backoff.Policy
	breaker   *breaker
	wake      chan struct{}
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	once      sync.Once
}

// New returns a Deliverer; Start starts it.
func New(opts Options) *Deliverer {
	if opts.Workers <= 0 {
		opts.Workers = 8
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.BackoffBase <= 0 {
		opts.BackoffBase = time.Second
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = 5 * time.Minute
	}
	opts.BackoffMax = max(opts.BackoffMax, opts.BackoffBase)
	if opts.MaxIdleWait <= 0 {
		opts.MaxIdleWait = 5 * time.Second
	}
	if opts.BreakerThreshold <= 0 {
		opts.BreakerThreshold = 3
	}
	if opts.BreakerEndpoints <= 0 {
		opts.BreakerEndpoints = 1024
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	ownClient := opts.Client == nil
	if ownClient {
		opts.Client = &http.Client{
			Timeout: opts.Timeout,
			// A redirect is not a delivery: following it would send the
			// event's body nowhere (a GET to the Location) and count the
			// answer as an ack. The 3xx is a failure, retried.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Transport: &http.Transport{
				Proxy:               http.ProxyFromEnvironment,
				DialContext:         (&net.Dialer{Timeout: opts.Timeout, KeepAlive: 30 * time.Second}).DialContext,
				MaxIdleConnsPerHost: opts.Workers,
				IdleConnTimeout:     90 * time.Second,
			},
		}
	}
	retry := backoff.Policy{Base: opts.BackoffBase, Max: opts.BackoffMax, Jitter: 0.25}
	return &Deliverer{
		opts: opts, log: opts.Logger, retry: retry, ownClient: ownClient,
		breaker: newBreaker(opts.BreakerThreshold, opts.BreakerEndpoints, backoff.Policy{Base: opts.BackoffBase, Max: opts.BackoffMax}),
		wake:    make(chan struct{}, opts.Workers),
	}
}

// Start starts the workers.
func (d *Deliverer) Start(ctx context.Context) {
	ctx, d.cancel = context.WithCancel(context.WithoutCancel(ctx))
	for i := 0; i < d.opts.Workers; i++ {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			d.work(ctx, i == 0)
		}()
	}
}

// Stop stops the workers; a delivery in flight is abandoned and its event
// made due again at once, for another host. Safe twice.
func (d *Deliverer) Stop() {
	d.once.Do(func() {
		if d.cancel != nil {
			d.cancel()
			d.wg.Wait()
		}
	})
	if t, ok := d.opts.Client.Transport.(*http.Transport); ok && d.ownClient {
		t.CloseIdleConnections()
	}
}

// Kick wakes an idle worker (a new event was queued).
func (d *Deliverer) Kick() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// OnEvent handles a message of the hooks channel (an event was queued on
// another host).
func (d *Deliverer) OnEvent(string) { d.Kick() }

// Observe is the deliverer's observer of the events bus: a change that
// queued a status hook event wakes a worker at once.
func (d *Deliverer) Observe(ev job.Event) {
	if ev.Announced {
		d.Kick()
	}
}

// lease is how long a claimed job stays with its worker.
func (d *Deliverer) lease() time.Duration { return 3*d.opts.Timeout + 5*time.Second }

// work claims and delivers events until ctx ends. When nothing is due,
// only the poller keeps an eye on the clock (the next due time, or
// MaxIdleWait); the other workers wait to be kicked, so an idle host costs
// Redis one claim per MaxIdleWait, not one per worker. A worker that got
// an event kicks another one, so a backlog spreads over every worker.
func (d *Deliverer) work(ctx context.Context, poller bool) {
	idle := time.NewTimer(0)
	defer idle.Stop()
	for ctx.Err() == nil {
		ev, next, err := d.opts.Store.ClaimHook(ctx, d.lease())
		if err != nil {
			if ctx.Err() == nil {
				d.log.Warn("cannot claim a hook event", "error", err)
			}
			d.sleep(ctx, idle, d.opts.MaxIdleWait)
			continue
		}
		if ev == nil {
			// With nothing queued only the poller keeps a timer; with an
			// event queued for later (a retry), every idle worker wakes
			// when it is due, so that a retry waits for its backoff and
			// not for the poller.
			if next.IsZero() && !poller {
				d.sleep(ctx, nil, 0)
				continue
			}
			wait := d.opts.MaxIdleWait
			if !next.IsZero() {
				wait = min(max(time.Until(next), 0), wait)
			}
			d.sleep(ctx, idle, wait)
			continue
		}
		d.Kick()
		d.deliver(ctx, ev)
	}
}

// sleep waits for a kick, ctx's end, or (with a timer) wait.
func (d *Deliverer) sleep(ctx context.Context, t *time.Timer, wait time.Duration) {
	if t == nil {
		select {
		case <-ctx.Done():
		case <-d.wake:
		}
		return
	}
	t.Reset(wait)
	select {
	case <-ctx.Done():
	case <-t.C:
		return
	case <-d.wake:
	}
	if !t.Stop() {
		select {
		case <-t.C:
		default:
		}
	}
}

// deliver sends one event and records the outcome.
func (d *Deliverer) deliver(ctx context.Context, ev *store.HookEvent) {
	target := d.rewrite(ev.Stats.WebHookURL)
	log := d.log.With("job_id", ev.Stats.ID, "status", ev.Stats.Status, "url", redact(target))
	endpoint := endpointOf(target)
	// Recording the outcome must outlive a shutdown.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if wait, open := d.breaker.open(endpoint); open {
		// Skipped, not tried: the event's own backoff does not grow.
		if err := d.opts.Store.DelayHook(rctx, ev, wait); err != nil {
			log.Warn("cannot reschedule a hook event", "error", err)
		}
		return
	}
	err := d.post(ctx, target, ev)
	if err == nil {
		d.breaker.success(endpoint)
		if err := d.opts.Store.AckHook(rctx, ev); err != nil {
			log.Warn("the receiver accepted a hook event that could not be recorded; it may be sent again", "error", err)
		}
		return
	}
	if ctx.Err() != nil {
		// Shutting down: let another host send it now.
		_ = d.opts.Store.DelayHook(rctx, ev, 0)
		return
	}
	d.breaker.failure(endpoint)
	wait := d.retry.Delay(ev.Attempts + 1)
	level := hclog.Warn
	if ev.Attempts > 0 {
		level = hclog.Debug
	}
	log.Log(level, "hook delivery failed; retrying", "error", err, "attempt", ev.Attempts+1, "in", wait.Round(time.Millisecond))
	if err := d.opts.Store.FailHook(rctx, ev, wait); err != nil {
		log.Warn("cannot reschedule a hook event", "error", err)
	}
}

func (d *Deliverer) post(ctx context.Context, target string, ev *store.HookEvent) error {
	change := ev.Change()
	change.Metadata = job.RedactStats(change.Metadata) // the receiver sees no secret parameter
	body, err := json.Marshal(change)
	if err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, d.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := d.opts.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the receiver answered %d: %s", resp.StatusCode, strings.TrimSpace(string(msg)))
	}
	return nil
}

// rewrite applies the first matching rewrite rule.
func (d *Deliverer) rewrite(u string) string {
	for _, r := range d.opts.Rewrites {
		if strings.HasPrefix(u, r.From) {
			return r.To + strings.TrimPrefix(u, r.From)
		}
	}
	return u
}

// endpointOf is the scheme and host of a URL, the unit of the breaker.
func endpointOf(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	return p.Scheme + "://" + p.Host
}

// redact drops the user info of a URL for the log.
func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.User == nil {
		return u
	}
	p.User = url.User("xxxxx")
	return p.String()
}
