package pubsub

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/hashicorp/go-hclog"

	"github.com/berth-dev/berth/host/internal/backoff"
)

// Options configure a Listener.
type Options struct {
	Pool *redis.Pool
	// Handlers maps channel names to what to do with a message's payload.
	// Handlers run on the listener's goroutine: keep them short.
	Handlers map[string]func(payload string)
	// OnConnect runs after every (re)subscription, in its own goroutine.
	OnConnect func()
	Logger    hclog.Logger
	// PingEvery is how often the connection is checked (default 10s); a
	// connection that answers nothing for three times that is replaced.
	PingEvery time.Duration
	// Reconnect is the wait between attempts to get a lost connection back
	// (default 100ms doubling up to 5s).
	Reconnect backoff.Policy
}

// Listener is the pub/sub connection of a host.
type Listener struct {
	opts  Options
	ready chan struct{}
	once  sync.Once
	done  chan struct{}

	mu      sync.Mutex
	started bool
	cancel  context.CancelFunc
	drop    context.CancelFunc // ends the current connection (Reconnect)
	hooks   sync.WaitGroup     // OnConnect goroutines
}

// New returns a Listener; Start starts it.
func New(opts Options) *Listener {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.PingEvery <= 0 {
		opts.PingEvery = 10 * time.Second
	}
	if opts.Reconnect.Base <= 0 {
		opts.Reconnect = backoff.Policy{Base: 100 * time.Millisecond, Max: 5 * time.Second, Jitter: 0.1}
	}
	return &Listener{opts: opts, ready: make(chan struct{}), done: make(chan struct{})}
}

// Start starts listening, until Stop. It returns once the first
// subscription is confirmed, or, when ctx ends first, stops and returns
// ctx's error: ctx bounds the start, not the listening. A second Start
// does nothing.
func (l *Listener) Start(ctx context.Context) error {
	l.mu.Lock()
	if l.started {
		l.mu.Unlock()
		return nil
	}
	l.started = true
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	l.cancel = cancel
	l.mu.Unlock()
	go func() {
		defer close(l.done)
		l.loop(runCtx)
	}()
	select {
	case <-l.ready:
		return nil
	case <-ctx.Done():
		l.Stop()
		return ctx.Err()
	}
}

// Stop stops listening and waits for the listener and the OnConnect
// calls it made to end. Safe twice, and before Start.
func (l *Listener) Stop() {
	l.mu.Lock()
	cancel := l.cancel
	l.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-l.done
	l.hooks.Wait()
}

func (l *Listener) loop(ctx context.Context) {
	for failures := 1; ctx.Err() == nil; failures++ {
		err := l.listen(ctx)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, errSubscribed) {
			failures = 1 // it was up: start the backoff again
		}
		wait := l.opts.Reconnect.Delay(failures)
		if errors.Is(err, errReconnect) {
			l.opts.Logger.Info("subscribing again on a new connection, to the new Redis primary", "in", wait)
		} else {
			l.opts.Logger.Warn("lost the Redis pub/sub connection; reconnecting", "error", err, "in", wait)
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return
		}
	}
}

// Reconnect drops the current connection and subscribes again on a new
// one (OnConnect runs again): a host calls it when the Redis primary
// moved, since messages published on the new primary do not reach a
// connection to the old one.
func (l *Listener) Reconnect() {
	l.mu.Lock()
	drop := l.drop
	l.mu.Unlock()
	if drop != nil {
		drop()
	}
}

// errReconnect ends a connection that Reconnect dropped.
var errReconnect = errors.New("pubsub: reconnecting to the new Redis primary")

// errSubscribed wraps the error that ended a connection that had been
// subscribed.
var errSubscribed = errors.New("pubsub: the subscribed connection failed")

// listen subscribes on one connection and dispatches until it fails.
func (l *Listener) listen(ctx context.Context) error {
	conn, err := l.opts.Pool.GetContext(ctx)
	if err != nil {
		return err
	}
	psc := redis.PubSubConn{Conn: conn}
	defer psc.Close()
	connCtx, drop := context.WithCancel(ctx)
	defer drop()
	l.mu.Lock()
	l.drop = drop
	l.mu.Unlock()
	channels := make([]any, 0, len(l.opts.Handlers))
	for ch := range l.opts.Handlers {
		channels = append(channels, ch)
	}
	if err := psc.Subscribe(channels...); err != nil {
		return err
	}
	// The pinger shares the connection: it has ended before the deferred
	// Close writes to it.
	pingDone, pinged := make(chan struct{}), make(chan struct{})
	defer func() {
		close(pingDone)
		<-pinged
	}()
	go func() {
		defer close(pinged)
		t := time.NewTicker(l.opts.PingEvery)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				if err := psc.Ping(""); err != nil {
					return
				}
			case <-pingDone:
				return
			}
		}
	}()
	subscribed := 0
	for {
		// A receive ends with ctx, or when nothing (not even the answer to
		// a ping) arrived for three ping intervals.
		rctx, cancel := context.WithTimeout(connCtx, 3*l.opts.PingEvery)
		reply := psc.ReceiveContext(rctx)
		cancel()
		switch m := reply.(type) {
		case redis.Message:
			if h := l.opts.Handlers[m.Channel]; h != nil {
				h(string(m.Data))
			}
		case redis.Subscription:
			if m.Kind == "subscribe" {
				if subscribed++; subscribed == len(channels) {
					l.once.Do(func() { close(l.ready) })
					if l.opts.OnConnect != nil {
						l.hooks.Add(1)
						go func() {
							defer l.hooks.Done()
							l.opts.OnConnect()
						}()
					}
				}
			}
		case redis.Pong:
		case error:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if connCtx.Err() != nil {
				return fmt.Errorf("%w: %w", errSubscribed, errReconnect)
			}
			if subscribed == len(channels) {
				return fmt.Errorf("%w: %w", errSubscribed, m)
			}
			return m
		default:
			return errors.New("pubsub: unexpected pub/sub reply")
		}
	}
}
