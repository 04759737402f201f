package redisx

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/hashicorp/go-hclog"
)

// Defaults applied by Open to zero Options fields.
const (
	DefaultIdleTimeout = time.Hour
	// NoIdleTimeout, as Options.IdleTimeout, never closes idle connections.
	NoIdleTimeout      time.Duration = -1
	DefaultMaxIdle                   = 64
	DefaultDialTimeout               = 5 * time.Second
)

const (
	// borrowPingAfter: a connection idle for longer is PINGed before it is
	// handed out.
	borrowPingAfter = time.Minute
	// writeTimeout bounds each write to the server. Writes are small; one that
	// blocks this long means the server has stopped reading.
	writeTimeout = 10 * time.Second
	// keepAlive is the TCP keep-alive period. There is no read timeout, so a
	// peer that vanished is noticed through keep-alive probes, after about
	// keepAlive * 10 (Linux sends 9 probes).
	keepAlive = 15 * time.Second
	// embeddedDescription is what Describe says for the embedded backend.
	embeddedDescription = "embedded (in-memory, jobs do not survive a restart)"
)

// Options configures Open.
type Options struct {
	// URL of the Redis server; see ParseURL. Empty starts an embedded
	// in-memory Redis.
	URL string
	// IdleTimeout closes connections idle for longer. 0 means 1h,
	// NoIdleTimeout never. A URL's idle_timeout_seconds wins over it (as in
	// Harbor, whose installer writes both), and there 0 means never.
	IdleTimeout time.Duration
	// MaxIdle is the number of idle connections kept. 0 means 64.
	MaxIdle int
	// MaxActive caps the connections open at once; 0 (the default) means no
	// cap. With a cap, callers wait for a free connection rather than fail,
	// and gocraft/work waits without a deadline, so the cap must exceed
	// worker concurrency + subscribers + about 10 background loops, or the
	// host stalls. Leave it 0 unless the Redis server's maxclients forces one.
	MaxActive int
	// DialTimeout bounds connecting, including AUTH, SELECT and the role check
	// with Sentinel, and each question to a sentinel. 0 means 5s. There is no
	// read timeout: pub/sub subscribers block in Receive for as long as no
	// message comes, and gocraft/work uses no blocking command that needs
	// one. Bound single calls with redis.DoContext instead.
	DialTimeout time.Duration
	// Logger may be nil.
	Logger hclog.Logger
}

func (o Options) withDefaults() (Options, error) {
	for _, f := range []struct {
		name string
		bad  bool
	}{
		{"IdleTimeout", o.IdleTimeout < 0 && o.IdleTimeout != NoIdleTimeout},
		{"MaxIdle", o.MaxIdle < 0},
		{"MaxActive", o.MaxActive < 0},
		{"DialTimeout", o.DialTimeout < 0},
	} {
		if f.bad {
			return o, fmt.Errorf("redisx: Options.%s must not be negative", f.name)
		}
	}
	switch o.IdleTimeout {
	case 0:
		o.IdleTimeout = DefaultIdleTimeout
	case NoIdleTimeout:
		o.IdleTimeout = 0 // redigo's "never"
	}
	if o.MaxIdle == 0 {
		o.MaxIdle = DefaultMaxIdle
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	return o, nil
}

// Backend is the Redis connection pool the host shares, with what it runs on.
type Backend struct {
	pool     *redis.Pool
	target   *Target
	opts     Options
	log      hclog.Logger
	desc     string
	embedded *embedded         // nil unless URL was empty
	sentinel *sentinelResolver // nil unless redis+sentinel

	stopBackground context.CancelFunc
	background     sync.WaitGroup
	closeOnce      sync.Once
	closeErr       error
}

// Open builds the pool for opts.URL, or starts an embedded Redis when it is
// empty, and PINGs the server before returning. An error names the URL (with
// passwords redacted), the address that failed and what to check. Open
// returns within DialTimeout for one address; with Sentinel, within
// DialTimeout per sentinel asked plus one for the primary; and sooner if ctx
// ends.
func Open(ctx context.Context, opts Options) (*Backend, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	b := &Backend{opts: opts, log: opts.Logger}
	bgCtx, cancel := context.WithCancel(context.Background())
	b.stopBackground = cancel

	if opts.URL == "" {
		e, err := startEmbedded()
		if err != nil {
			cancel()
			return nil, err
		}
		b.embedded = e
		b.target = &Target{Scheme: SchemeRedis, Addrs: []string{e.addr()}}
		b.desc = embeddedDescription
		b.background.Add(1)
		go func() {
			defer b.background.Done()
			e.runClock(bgCtx)
		}()
	} else {
		t, err := ParseURL(opts.URL)
		if err != nil {
			cancel()
			return nil, err
		}
		b.target = t
		b.desc = t.String()
		if t.IdleTimeout != nil {
			opts.IdleTimeout = *t.IdleTimeout
			b.opts.IdleTimeout = opts.IdleTimeout
		}
	}
	if b.target.Scheme == SchemeSentinel {
		b.sentinel = newSentinelResolver(b.target, b.dialOptions(), opts.DialTimeout, b.log)
	}
	b.pool = &redis.Pool{
		DialContext:  b.dial,
		TestOnBorrow: b.testOnBorrow,
		MaxIdle:      opts.MaxIdle,
		MaxActive:    opts.MaxActive,
		Wait:         opts.MaxActive > 0,
		IdleTimeout:  opts.IdleTimeout,
	}

	if err := b.ping(ctx); err != nil {
		_ = b.Close()
		return nil, &openError{desc: b.desc, hint: b.hint(err), err: err}
	}
	if b.sentinel != nil {
		b.background.Add(1)
		go func() {
			defer b.background.Done()
			b.sentinel.monitor(bgCtx)
		}()
	}
	if b.embedded != nil {
		b.log.Warn("using the EMBEDDED in-memory Redis: jobs, schedules and statuses are lost when the host stops; set a Redis URL for production",
			"addr", b.target.Addrs[0])
	} else {
		b.log.Info("connected to Redis", "redis", b.desc)
	}
	return b, nil
}

// ping checks the server through the pool, bounding the whole exchange.
func (b *Backend) ping(ctx context.Context) error {
	budget := b.opts.DialTimeout
	if b.sentinel != nil {
		budget *= time.Duration(len(b.target.Addrs) + 1)
	}
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	c, err := b.pool.GetContext(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := redis.DoContext(c, ctx, "PING"); err != nil {
		return fmt.Errorf("redisx: PING %s: %w", b.addrForErrors(), err)
	}
	return nil
}

func (b *Backend) addrForErrors() string {
	if b.sentinel != nil {
		if m := b.sentinel.current(); m != "" {
			return m
		}
	}
	return b.target.Addrs[0]
}

// dialOptions are the options for data-node connections.
func (b *Backend) dialOptions() []redis.DialOption {
	t := b.target
	opts := []redis.DialOption{
		redis.DialConnectTimeout(b.opts.DialTimeout),
		redis.DialTLSHandshakeTimeout(b.opts.DialTimeout),
		redis.DialWriteTimeout(writeTimeout),
		redis.DialKeepAlive(keepAlive),
		redis.DialDatabase(t.DB),
		redis.DialPassword(t.Password),
		redis.DialUsername(t.Username),
	}
	if t.Scheme == SchemeTLS {
		opts = append(opts, redis.DialUseTLS(true), redis.DialTLSSkipVerify(t.SkipVerify))
	}
	return opts
}

// dial opens one connection. With Sentinel it asks the sentinels for the
// primary each time, so that after a failover new connections reach the new
// primary.
func (b *Backend) dial(ctx context.Context) (redis.Conn, error) {
	if b.sentinel != nil {
		return b.sentinel.dial(ctx)
	}
	ctx, cancel := context.WithTimeout(ctx, b.opts.DialTimeout)
	defer cancel()
	network, addr := "tcp", b.target.Addrs[0]
	if b.target.Scheme == SchemeUnix {
		network = "unix"
	}
	c, err := redis.DialContext(ctx, network, addr, b.dialOptions()...)
	if err != nil {
		return nil, fmt.Errorf("redisx: dial %s: %w", addr, err)
	}
	return c, nil
}

// testOnBorrow drops a connection to a node that is no longer the primary
// (Sentinel; one atomic load) and PINGs connections idle for over a minute.
func (b *Backend) testOnBorrow(c redis.Conn, lastUsed time.Time) error {
	if b.sentinel != nil {
		if err := b.sentinel.check(c); err != nil {
			return err
		}
	}
	if time.Since(lastUsed) < borrowPingAfter {
		return nil
	}
	_, err := redis.DoWithTimeout(c, b.opts.DialTimeout, "PING")
	return err
}

// OnPrimaryChange makes fn be called, on the goroutine that noticed, each
// time the Sentinel primary is found on another node (from and to are
// their addresses). Writes the old primary took shortly before it was
// demoted may be missing from the new one: fn is where a host makes them
// again. Without Sentinel the primary never changes and fn is never
// called. fn must not block.
func (b *Backend) OnPrimaryChange(fn func(from, to string)) {
	if b.sentinel != nil {
		b.sentinel.changed.Store(&fn)
	}
}

// Sentinel reports whether the primary is found through Sentinel.
func (b *Backend) Sentinel() bool { return b.sentinel != nil }

// Pool returns the shared connection pool.
func (b *Backend) Pool() *redis.Pool { return b.pool }

// Embedded reports whether the backend is the embedded in-memory Redis.
func (b *Backend) Embedded() bool { return b.embedded != nil }

// Describe returns the URL with passwords redacted, or
// "embedded (in-memory, jobs do not survive a restart)".
func (b *Backend) Describe() string { return b.desc }

// Close closes the pool, stops background work (the Sentinel monitor, the
// embedded clock) and the embedded server. Safe to call twice.
func (b *Backend) Close() error {
	b.closeOnce.Do(func() {
		b.stopBackground()
		b.background.Wait()
		b.closeErr = b.pool.Close()
		if b.embedded != nil {
			b.embedded.close()
		}
	})
	return b.closeErr
}

// openError is Open's error: the URL, the cause, and what to check.
type openError struct {
	desc, hint string
	err        error
}

func (e *openError) Error() string {
	return fmt.Sprintf("redisx: open %s: %s (%s)", e.desc, strings.TrimPrefix(e.err.Error(), "redisx: "), e.hint)
}

func (e *openError) Unwrap() error { return e.err }

// Unreachable tells whether err, from Open, says the server could not be
// reached (refused, timed out, unknown host, no primary known to the
// sentinels): worth trying again later, unlike a server that answered
// with an error (a wrong password) or a URL that does not parse.
func Unreachable(err error) bool {
	var oe *openError
	if !errors.As(err, &oe) {
		return false
	}
	var re redis.Error
	return !errors.As(oe.err, &re)
}

// hint says what to check for a failed Open.
func (b *Backend) hint(err error) string {
	msg := err.Error()
	has := func(subs ...string) bool {
		for _, s := range subs {
			if strings.Contains(msg, s) {
				return true
			}
		}
		return false
	}
	switch {
	case has("WRONGPASS", "NOAUTH", "invalid password", "invalid username-password", "AUTH <password> called without"):
		return "check the user name and password in the URL"
	case has("DB index is out of range"):
		return "check the database number in the URL against the server's 'databases' setting"
	case has("tls:", "x509:", "TLS handshake"):
		return "check that the server speaks TLS on that port and its certificate is trusted (skip_verify=true is for test certificates only)"
	case b.sentinel != nil:
		return "check the sentinel addresses, the master name, sentinel_password, and that this host can reach the primary the sentinels report"
	case b.target.Scheme == SchemeUnix:
		return fmt.Sprintf("check that Redis listens on the socket %s and this process may open it", b.target.Addrs[0])
	case errors.Is(err, context.DeadlineExceeded) || has("i/o timeout"):
		return fmt.Sprintf("no answer in time: check that Redis runs at %s and that no firewall drops the traffic", b.target.Addrs[0])
	default:
		return fmt.Sprintf("check that Redis runs at %s and is reachable from this host: bind address, firewall, protected-mode", b.target.Addrs[0])
	}
}
