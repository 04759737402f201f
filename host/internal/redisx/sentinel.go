package redisx

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/hashicorp/go-hclog"
)

// monitorInterval is how often the Sentinel monitor asks for the primary's
// address. It bounds how long, after the sentinels switch, pooled
// connections to the old primary can still be handed out.
const monitorInterval = 250 * time.Millisecond

// sentinelResolver finds the primary through the sentinels and keeps track of
// which node it is.
//
// Staleness, cheaply: every connection remembers the address it was dialed to
// (nodeConn). The resolver keeps the primary's address, updated by every dial
// and by a monitor goroutine that asks one sentinel, over one long-lived
// connection, once per monitorInterval. TestOnBorrow compares the two
// addresses, an atomic load and a string compare, and drops connections to
// any other node. So a pooled connection to a demoted primary is handed out
// for at most about monitorInterval after the sentinels have switched, and
// no borrow pays a round trip. A new address is believed only after a
// connection to it reports ROLE master.
type sentinelResolver struct {
	target   *Target
	dialOpts []redis.DialOption
	timeout  time.Duration
	log      hclog.Logger
	primary  atomic.Pointer[string]
	changed  atomic.Pointer[func(from, to string)]
}

func newSentinelResolver(t *Target, dialOpts []redis.DialOption, timeout time.Duration, log hclog.Logger) *sentinelResolver {
	return &sentinelResolver{target: t, dialOpts: dialOpts, timeout: timeout, log: log}
}

// current returns the last primary address seen, or "".
func (r *sentinelResolver) current() string {
	if p := r.primary.Load(); p != nil {
		return *p
	}
	return ""
}

func (r *sentinelResolver) setCurrent(addr string) {
	if old := r.primary.Swap(&addr); old != nil && *old != addr {
		r.log.Warn("Redis primary changed", "master", r.target.MasterName, "from", *old, "to", addr)
		if fn := r.changed.Load(); fn != nil {
			(*fn)(*old, addr)
		}
	}
}

// dial asks the sentinels in order for the primary, connects to it and
// checks that it is the primary. A sentinel that fails or names a node that
// is not (or no longer) the primary makes it try the next one.
func (r *sentinelResolver) dial(ctx context.Context) (redis.Conn, error) {
	var errs joinedErrors
	failed := map[string]bool{}
	for _, s := range r.target.Addrs {
		addr, err := r.askSentinel(ctx, s)
		if err != nil {
			errs = append(errs, fmt.Errorf("sentinel %s: %w", s, err))
		} else if !failed[addr] {
			c, err := r.dialPrimary(ctx, addr)
			if err == nil {
				r.setCurrent(addr)
				return &nodeConn{Conn: c, addr: addr}, nil
			}
			failed[addr] = true
			errs = append(errs, fmt.Errorf("primary %s (from sentinel %s): %w", addr, s, err))
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("redisx: sentinel master %q: %w", r.target.MasterName, errs)
}

func (r *sentinelResolver) dialSentinel(ctx context.Context, addr string) (redis.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	c, err := redis.DialContext(ctx, "tcp", addr,
		redis.DialConnectTimeout(r.timeout),
		redis.DialReadTimeout(r.timeout),
		redis.DialWriteTimeout(r.timeout),
		redis.DialKeepAlive(keepAlive),
		redis.DialPassword(r.target.SentinelPassword))
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	return c, nil
}

// askSentinel asks the sentinel at addr for the primary's address.
func (r *sentinelResolver) askSentinel(ctx context.Context, addr string) (string, error) {
	c, err := r.dialSentinel(ctx, addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	return r.query(ctx, c)
}

func (r *sentinelResolver) query(ctx context.Context, c redis.Conn) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	v, err := redis.Strings(redis.DoContext(c, ctx, "SENTINEL", "get-master-addr-by-name", r.target.MasterName))
	switch {
	case errors.Is(err, redis.ErrNil):
		return "", fmt.Errorf("does not monitor a master named %q", r.target.MasterName)
	case err != nil:
		return "", fmt.Errorf("SENTINEL get-master-addr-by-name: %w", err)
	case len(v) != 2:
		return "", fmt.Errorf("SENTINEL get-master-addr-by-name: unexpected reply %q", v)
	}
	return net.JoinHostPort(v[0], v[1]), nil
}

// dialPrimary connects to addr and checks that it reports ROLE master.
func (r *sentinelResolver) dialPrimary(ctx context.Context, addr string) (redis.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	c, err := redis.DialContext(ctx, "tcp", addr, r.dialOpts...)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	role, err := redis.Values(redis.DoContext(c, ctx, "ROLE"))
	if err == nil && len(role) == 0 {
		err = errors.New("empty reply")
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("ROLE: %w", err)
	}
	if name, _ := redis.String(role[0], nil); name != "master" {
		c.Close()
		return nil, fmt.Errorf("reports role %q, not master (failover in progress?)", name)
	}
	return c, nil
}

// check rejects a pooled connection to a node other than the primary.
func (r *sentinelResolver) check(c redis.Conn) error {
	nc, ok := c.(*nodeConn)
	if !ok {
		return nil
	}
	if cur := r.current(); cur != "" && cur != nc.addr {
		return fmt.Errorf("redisx: %s is no longer the primary of %q (%s is)", nc.addr, r.target.MasterName, cur)
	}
	return nil
}

// monitor follows the primary's address until ctx ends. It asks one sentinel
// per tick over a kept connection; when the answer differs from the known
// primary it resolves afresh (dial verifies ROLE), and if the resolved
// primary still differs from what its sentinel said, it moves on to the next
// sentinel, so that a sentinel with a stale view is not followed.
func (r *sentinelResolver) monitor(ctx context.Context) {
	tick := time.NewTicker(monitorInterval)
	defer tick.Stop()
	var (
		conn redis.Conn
		idx  int
	)
	next := func() {
		if conn != nil {
			conn.Close()
			conn = nil
		}
		idx = (idx + 1) % len(r.target.Addrs)
	}
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		sentinel := r.target.Addrs[idx]
		if conn == nil {
			c, err := r.dialSentinel(ctx, sentinel)
			if err != nil {
				r.log.Debug("Sentinel monitor: cannot reach sentinel", "sentinel", sentinel, "error", err)
				next()
				continue
			}
			conn = c
		}
		addr, err := r.query(ctx, conn)
		if err != nil {
			r.log.Debug("Sentinel monitor: sentinel did not answer", "sentinel", sentinel, "error", err)
			next()
			continue
		}
		if addr == r.current() {
			continue
		}
		c, err := r.dial(ctx)
		if err != nil {
			r.log.Warn("Sentinel monitor: primary not reachable", "master", r.target.MasterName, "error", err)
			continue
		}
		c.Close()
		if r.current() != addr {
			next()
		}
	}
}

// nodeConn is a connection that remembers which node it is connected to. It
// passes the timeout and context variants through, which redigo looks for
// with type assertions.
type nodeConn struct {
	redis.Conn
	addr string
}

func (c *nodeConn) DoWithTimeout(timeout time.Duration, cmd string, args ...any) (any, error) {
	return redis.DoWithTimeout(c.Conn, timeout, cmd, args...)
}

func (c *nodeConn) ReceiveWithTimeout(timeout time.Duration) (any, error) {
	return redis.ReceiveWithTimeout(c.Conn, timeout)
}

func (c *nodeConn) DoContext(ctx context.Context, cmd string, args ...any) (any, error) {
	return redis.DoContext(c.Conn, ctx, cmd, args...)
}

func (c *nodeConn) ReceiveContext(ctx context.Context) (any, error) {
	return redis.ReceiveContext(c.Conn, ctx)
}

var (
	_ redis.ConnWithTimeout = (*nodeConn)(nil)
	_ redis.ConnWithContext = (*nodeConn)(nil)
)

// joinedErrors joins errors on one line, for log-friendly messages.
type joinedErrors []error

func (e joinedErrors) Error() string {
	if len(e) == 0 {
		return "no sentinel to ask"
	}
	msgs := make([]string, len(e))
	for i, err := range e {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "; ")
}

func (e joinedErrors) Unwrap() []error { return e }
