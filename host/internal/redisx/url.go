package redisx

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Scheme is how a Target is reached.
type Scheme string

// Schemes accepted by ParseURL. Harbor's legacy "host:port,weight,password,db"
// form parses to SchemeRedis.
const (
	SchemeRedis    Scheme = "redis"          // TCP
	SchemeTLS      Scheme = "rediss"         // TCP with TLS
	SchemeUnix     Scheme = "unix"           // unix socket
	SchemeSentinel Scheme = "redis+sentinel" // primary found through Sentinel
)

const (
	defaultPort         = "6379"
	defaultSentinelPort = "26379"
	redacted            = "xxxxx"
)

// Query parameters. idle_timeout_seconds is Harbor's: its installer writes
// it into the Redis URL of every component, and Harbor's pool takes it over
// the pool setting of the component's own configuration.
const (
	paramIdleTimeout      = "idle_timeout_seconds"
	paramSkipVerify       = "skip_verify"
	paramDB               = "db"
	paramSentinelPassword = "sentinel_password"

	// maxIdleTimeoutSeconds bounds idle_timeout_seconds (68 years), so that
	// it fits a time.Duration.
	maxIdleTimeoutSeconds = 1<<31 - 1
)

// queryParams lists the query parameters each scheme takes.
var queryParams = map[Scheme][]string{
	SchemeRedis:    {paramIdleTimeout},
	SchemeTLS:      {paramIdleTimeout, paramSkipVerify},
	SchemeUnix:     {paramDB, paramIdleTimeout},
	SchemeSentinel: {paramIdleTimeout, paramSentinelPassword},
}

// Target is a parsed Redis URL.
type Target struct {
	Scheme Scheme
	// Addrs holds one host:port for redis and rediss, the socket path for
	// unix, and the sentinels, in the order to ask them, for redis+sentinel.
	Addrs []string
	// MasterName is the name the sentinels know the primary by.
	MasterName string
	// Username and Password authenticate to the data node (the primary, with
	// Sentinel). An empty Username sends AUTH <password> only.
	Username string
	Password string
	// SentinelPassword authenticates to the sentinels (query parameter
	// sentinel_password); empty means they need no AUTH.
	SentinelPassword string
	// DB is the database number selected on each connection.
	DB int
	// SkipVerify disables TLS certificate verification (rediss, query
	// parameter skip_verify=true). For test certificates only.
	SkipVerify bool
	// IdleTimeout closes pooled connections idle for longer; 0 never does
	// (query parameter idle_timeout_seconds, Harbor's). Nil when the URL
	// gives none; when set, it wins over Options.IdleTimeout, as in Harbor.
	IdleTimeout *time.Duration
	// Legacy is set for Harbor's "host:port,weight,password,db" form.
	Legacy bool
}

// ParseURL parses a Redis URL:
//
//	redis://[[user]:password@]host[:port][/db]
//	rediss://[[user]:password@]host[:port][/db][?skip_verify=true]
//	unix://[[user]:password@]/path/to/socket[?db=N]
//	redis+sentinel://[[user]:password@]host1[:port1][,host2[:port2]...]/mastername[/db][?sentinel_password=...]
//	host:port[,weight[,password[,db]]]   (Harbor's legacy form; weight is ignored)
//
// Every form with a scheme may also carry idle_timeout_seconds=N (Harbor's
// installer writes ?idle_timeout_seconds=30): pooled connections idle for N
// seconds are closed, 0 never. A query parameter that the form does not
// take is an error that names it (every such parameter, sorted).
//
// The port defaults to 6379, or 26379 for sentinels. User and password are
// percent-decoded; characters that would end the user info early need no
// escaping, since the user info runs up to the last '@'. A lone user name
// ("redis://secret@host") is a password, as for redis-cli, and the user name
// "anonymous" (which Harbor writes in its URLs) is dropped, so that AUTH
// carries the password alone. Errors name the URL as Redact shows it, and
// quote no part of it that could hold a password.
func ParseURL(raw string) (*Target, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, fmt.Errorf("redisx: empty Redis URL")
	}
	var (
		t   *Target
		err error
	)
	if scheme, rest, ok := strings.Cut(raw, "://"); ok {
		t, err = parseURL(Scheme(strings.ToLower(scheme)), rest)
	} else {
		t, err = parseLegacy(raw)
	}
	if err != nil {
		return nil, fmt.Errorf("redisx: Redis URL %q: %w", Redact(raw), err)
	}
	return t, nil
}

func parseURL(scheme Scheme, rest string) (*Target, error) {
	t := &Target{Scheme: scheme}
	switch scheme {
	case SchemeRedis, SchemeTLS, SchemeUnix, SchemeSentinel:
	case Scheme(""):
		return nil, fmt.Errorf("missing scheme before \"://\" (want redis, rediss, unix or redis+sentinel)")
	default:
		if !isScheme(string(scheme)) {
			// Not a scheme at all (say "h:1,100,pa://ss"): it may hold a password.
			return nil, fmt.Errorf("the text before \"://\" is no scheme (want redis, rediss, unix or redis+sentinel)")
		}
		return nil, fmt.Errorf("unknown scheme %q (want redis, rediss, unix or redis+sentinel, "+
			"or no URL at all for the embedded in-memory Redis)", scheme)
	}
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		if err := t.parseUserinfo(rest[:i]); err != nil {
			return nil, err
		}
		rest = rest[i+1:]
	}
	if strings.IndexByte(rest, '#') >= 0 {
		// Not quoted: it may be the tail of a sentinel_password.
		return nil, fmt.Errorf("unexpected fragment after '#' (percent-encode '#' as %%23)")
	}
	rest, rawQuery, _ := strings.Cut(rest, "?")
	if key, ok := ampersandInPassword(rawQuery); ok {
		// Not quoted: the name after the '&' is the end of the password.
		return nil, fmt.Errorf("a query parameter without '=' follows %s (percent-encode '&' in a password as %%26)", key)
	}
	query, err := url.ParseQuery(rawQuery)
	if err != nil {
		if ee := url.EscapeError(""); errors.As(err, &ee) {
			// Not quoted: the bad escape may be inside a password.
			return nil, fmt.Errorf("query: bad percent-encoding (write '%%' as %%25)")
		}
		return nil, fmt.Errorf("query: %w", err)
	}
	host, path := rest, ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		host, path = rest[:i], rest[i:]
	}

	switch scheme {
	case SchemeRedis, SchemeTLS:
		addr, err := hostPort(host, defaultPort)
		if err != nil {
			return nil, err
		}
		t.Addrs = []string{addr}
		if t.DB, err = parseDB(strings.TrimPrefix(path, "/")); err != nil {
			return nil, err
		}
	case SchemeUnix:
		if host != "" && host != "localhost" {
			return nil, fmt.Errorf("unexpected host %q (want unix:///absolute/path)", host)
		}
		if path == "" || path == "/" {
			return nil, fmt.Errorf("missing socket path (want unix:///absolute/path)")
		}
		p, err := url.PathUnescape(path)
		if err != nil {
			return nil, fmt.Errorf("socket path: %w", err)
		}
		t.Addrs = []string{p}
	case SchemeSentinel:
		if host == "" {
			return nil, fmt.Errorf("missing sentinel addresses")
		}
		for h := range strings.SplitSeq(host, ",") {
			addr, err := hostPort(h, defaultSentinelPort)
			if err != nil {
				return nil, fmt.Errorf("sentinel %w", err)
			}
			t.Addrs = append(t.Addrs, addr)
		}
		name, db, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
		if name == "" {
			return nil, fmt.Errorf("missing master name (want redis+sentinel://host:port/mastername[/db])")
		}
		if t.MasterName, err = url.PathUnescape(name); err != nil {
			return nil, fmt.Errorf("master name: %w", err)
		}
		if strings.ContainsAny(t.MasterName, " \t\r\n") {
			return nil, fmt.Errorf("master name %q contains white space", t.MasterName)
		}
		if t.DB, err = parseDB(db); err != nil {
			return nil, err
		}
	}
	if err := t.parseQuery(query, queryParams[scheme]); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *Target) parseUserinfo(userinfo string) error {
	user, pass, hasPass := strings.Cut(userinfo, ":")
	var err error
	if user, err = unescape(user); err != nil {
		return fmt.Errorf("user name: %w", err)
	}
	if pass, err = unescape(pass); err != nil {
		return fmt.Errorf("password: %w", err)
	}
	switch {
	case !hasPass:
		t.Password = user // redis-cli: a lone user info is the password
	case user == "anonymous":
		t.Password = pass // Harbor's placeholder user name
	default:
		t.Username, t.Password = user, pass
	}
	return nil
}

// unescape percent-decodes s, taking it literally if it is not valid
// percent-encoding (a password such as "50%off").
func unescape(s string) (string, error) {
	if v, err := url.PathUnescape(s); err == nil {
		return v, nil
	}
	return s, nil
}

// ampersandInPassword reports a parameter without '=' right after one named
// *password* (returning that name): "sentinel_password=a&b" most likely holds
// the password "a&b", not a parameter "b".
func ampersandInPassword(rawQuery string) (string, bool) {
	prev := ""
	for p := range strings.SplitSeq(rawQuery, "&") {
		k, _, hasValue := strings.Cut(p, "=")
		switch {
		case p == "":
		case !hasValue && prev != "":
			return prev, true
		case hasValue && isPasswordKey(k):
			prev = k
		default:
			prev = ""
		}
	}
	return "", false
}

// parseQuery reads the query parameters in allowed and refuses any other,
// naming every one.
func (t *Target) parseQuery(q url.Values, allowed []string) error {
	var unknown []string
	for key := range q {
		if !slices.Contains(allowed, key) {
			unknown = append(unknown, strconv.Quote(key))
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		what := "parameter"
		if len(unknown) > 1 {
			what = "parameters"
		}
		return fmt.Errorf("unknown query %s %s (%s URLs take %s)", what, strings.Join(unknown, ", "), t.Scheme, strings.Join(allowed, ", "))
	}
	for _, key := range allowed {
		vals, ok := q[key]
		if !ok {
			continue
		}
		if len(vals) != 1 {
			return fmt.Errorf("query parameter %q given %d times", key, len(vals))
		}
		v := vals[0]
		switch key {
		case paramSkipVerify:
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("skip_verify=%q is not a boolean", v)
			}
			t.SkipVerify = b
		case paramDB:
			db, err := parseDB(v)
			if err != nil {
				return err
			}
			t.DB = db
		case paramSentinelPassword:
			t.SentinelPassword = v
		case paramIdleTimeout:
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n < 0 || n > maxIdleTimeoutSeconds {
				return fmt.Errorf("%s=%q is not a whole number of seconds from 0 to %d (0: never close idle connections)",
					paramIdleTimeout, v, maxIdleTimeoutSeconds)
			}
			d := time.Duration(n) * time.Second
			t.IdleTimeout = &d
		}
	}
	return nil
}

func hostPort(s, defPort string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", fmt.Errorf("missing host")
	}
	if strings.Contains(s, "@") {
		// Only the legacy form gets here with an '@': a URL without its
		// scheme. What precedes the '@' is likely a password: do not quote it.
		return "", fmt.Errorf("address holds an '@'; write redis://[[user]:password@]host:port, " +
			"or host:port,weight,password,db")
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		// No port: "host" or "[::1]".
		if strings.Contains(strings.Trim(s, "[]"), ":") && !strings.HasPrefix(s, "[") {
			return "", fmt.Errorf("address %q: %v", s, err)
		}
		host, port = strings.Trim(s, "[]"), defPort
	}
	if host == "" {
		return "", fmt.Errorf("address %q: missing host", s)
	}
	if strings.ContainsAny(host, " /\\") {
		return "", fmt.Errorf("address %q: bad host", s)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("address %q: port %q is not a number from 1 to 65535", s, port)
	}
	return net.JoinHostPort(host, port), nil
}

func parseDB(s string) (int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	db, err := strconv.Atoi(s)
	if err != nil || db < 0 {
		return 0, fmt.Errorf("database %q is not a number >= 0", s)
	}
	return db, nil
}

// parseLegacy parses Harbor's "host:port[,weight[,password[,db]]]". A
// password holding commas is kept whole: the last field is the database when
// there are more than four.
func parseLegacy(raw string) (*Target, error) {
	parts := strings.Split(raw, ",")
	t := &Target{Scheme: SchemeRedis, Legacy: true}
	addr, err := hostPort(parts[0], defaultPort)
	if err != nil {
		return nil, err
	}
	t.Addrs = []string{addr}
	// parts[1] is a weight, ignored.
	switch {
	case len(parts) == 3:
		t.Password = parts[2]
	case len(parts) >= 4:
		t.Password = strings.Join(parts[2:len(parts)-1], ",")
		if t.DB, err = parseDB(parts[len(parts)-1]); err != nil {
			// Not quoted: the last field may be the tail of a password
			// holding commas (Redact hides it too).
			return nil, fmt.Errorf("the last field, the database, is not a number >= 0 " +
				"(a password holding commas must be followed by the database: host:port,weight,password,db)")
		}
	}
	return t, nil
}

// String returns the target as a canonical URL with passwords redacted.
func (t *Target) String() string {
	var b strings.Builder
	b.WriteString(string(t.Scheme))
	b.WriteString("://")
	if t.Username != "" || t.Password != "" {
		b.WriteString(url.PathEscape(t.Username))
		if t.Password != "" {
			b.WriteString(":" + redacted)
		}
		b.WriteString("@")
	}
	var q []string
	switch t.Scheme {
	case SchemeUnix:
		b.WriteString(t.Addrs[0])
		if t.DB != 0 {
			q = append(q, "db="+strconv.Itoa(t.DB))
		}
	case SchemeSentinel:
		b.WriteString(strings.Join(t.Addrs, ","))
		b.WriteString("/" + url.PathEscape(t.MasterName))
		if t.DB != 0 {
			b.WriteString("/" + strconv.Itoa(t.DB))
		}
		if t.SentinelPassword != "" {
			q = append(q, "sentinel_password="+redacted)
		}
	default:
		b.WriteString(t.Addrs[0])
		b.WriteString("/" + strconv.Itoa(t.DB))
		if t.SkipVerify {
			q = append(q, "skip_verify=true")
		}
	}
	if t.IdleTimeout != nil {
		q = append(q, paramIdleTimeout+"="+strconv.FormatInt(int64(*t.IdleTimeout/time.Second), 10))
	}
	if len(q) > 0 {
		b.WriteString("?" + strings.Join(q, "&"))
	}
	return b.String()
}

// HarborURL is raw as Harbor's job service reports it (GET /api/v1/config,
// which Harbor core's dashboard parses as a URL): a URL with a scheme is
// left as it is; Harbor's legacy "host:port[,weight,password,db]" becomes
// "redis://[arbitrary_username:password@]host:port[/db]", as Harbor
// translates it when it loads its configuration. raw that does not parse
// is left as it is.
func HarborURL(raw string) string {
	t, err := ParseURL(raw)
	if err != nil || !t.Legacy {
		return raw
	}
	u := url.URL{Scheme: string(SchemeRedis), Host: t.Addrs[0]}
	if t.Password != "" {
		u.User = url.UserPassword("arbitrary_username", t.Password)
	}
	if t.DB != 0 {
		u.Path = "/" + strconv.Itoa(t.DB)
	}
	return u.String()
}

// Redact returns raw with every password replaced by "xxxxx", for logs and
// error messages. It splits raw by the rules of ParseURL and never fails;
// where raw does not parse, it hides more rather than less. Hidden are:
//
//   - the password of the user info ("user:password@"), and a lone user info
//     ("secret@"), which ParseURL takes as the password;
//   - the value of every query parameter whose name holds "password", in any
//     case (sentinel_password among them), up to the next '&';
//   - in Harbor's "host:port,weight,password,db", the password, commas and
//     all, and also a weight or a database that is not a number (it may be
//     part of a password), and user info before an '@' in host:port;
//   - the whole URL when the text before "://" is no scheme.
//
// Empty passwords stay empty. White space around raw is dropped, as
// ParseURL does.
func Redact(raw string) string {
	raw = strings.TrimSpace(raw)
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return redactLegacy(raw)
	}
	if scheme != "" && !isScheme(scheme) {
		return redacted
	}
	userinfo := ""
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		userinfo, rest = redactUserinfo(rest[:i])+"@", rest[i+1:]
	}
	if i := strings.IndexByte(rest, '?'); i >= 0 {
		rest = rest[:i+1] + redactQuery(rest[i+1:])
	}
	return scheme + "://" + userinfo + rest
}

// redactUserinfo hides the password of "user:password" or "password".
func redactUserinfo(userinfo string) string {
	user, pass, hasPass := strings.Cut(userinfo, ":")
	switch {
	case hasPass && pass != "":
		return user + ":" + redacted
	case hasPass:
		return userinfo
	case user != "": // a lone user info is the password
		return redacted
	}
	return ""
}

// redactQuery hides the values of the parameters named *password*. A value
// runs up to the next '&', or further over parameters without '=' ("a&b" is
// taken for a password holding '&'). A name may also start after ';', '#' or
// '?', which ParseURL refuses but a reader could take for separators.
func redactQuery(q string) string {
	var out []string
	inPassword := false
	for p := range strings.SplitSeq(q, "&") {
		if inPassword && p != "" && !strings.Contains(p, "=") {
			continue // the rest of the password
		}
		inPassword = false
		start := 0 // where the current name starts; -1 inside a value
	scan:
		for j := 0; j < len(p); j++ {
			switch p[j] {
			case ';', '#', '?':
				start = j + 1
			case '=':
				if start >= 0 && isPasswordKey(p[start:j]) {
					p, inPassword = p[:j+1]+redacted, true
					break scan
				}
				start = -1
			}
		}
		out = append(out, p)
	}
	return strings.Join(out, "&")
}

func isPasswordKey(k string) bool {
	if dk, err := url.QueryUnescape(k); err == nil {
		k = dk
	}
	return strings.Contains(strings.ToLower(k), "password")
}

// redactLegacy hides the passwords of "host:port,weight,password,db".
func redactLegacy(raw string) string {
	parts := strings.Split(raw, ",")
	if i := strings.LastIndexByte(parts[0], '@'); i >= 0 {
		parts[0] = redactUserinfo(parts[0][:i]) + parts[0][i:]
	}
	if len(parts) < 2 {
		return parts[0]
	}
	if w := strings.TrimSpace(parts[1]); w != "" && !isWholeNumber(w) {
		parts[1] = redacted // not a weight: maybe the password, one field early
	}
	switch {
	case len(parts) == 3 && parts[2] != "":
		parts[2] = redacted
	case len(parts) >= 4:
		password := strings.Join(parts[2:len(parts)-1], ",")
		db := parts[len(parts)-1]
		if _, err := parseDB(db); err != nil {
			// No database last: it may be the end of a password with commas.
			return strings.Join(parts[:2], ",") + "," + redacted
		}
		if password != "" {
			password = redacted
		}
		parts = append(parts[:2:2], password, db)
	}
	return strings.Join(parts, ",")
}

func isWholeNumber(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 0
}

// isScheme reports whether s is a URL scheme by RFC 3986: a letter, then
// letters, digits, '+', '-' or '.'.
func isScheme(s string) bool {
	for i, r := range s {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z':
		case i > 0 && ('0' <= r && r <= '9' || r == '+' || r == '-' || r == '.'):
		default:
			return false
		}
	}
	return s != ""
}
