package config

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// checkRedisURL says what is wrong with a Redis URL, or "" if it looks
// usable. It only catches the obviously malformed; the Redis client parses
// it for real. Messages show the URL redacted.
func checkRedisURL(raw string) string {
	if raw == "" {
		return ""
	}
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return checkLegacyRedisAddr(raw)
	}
	shown := redactRedisURL(raw)
	switch strings.ToLower(scheme) {
	case "redis", "rediss":
		u, err := url.Parse(raw)
		if err != nil {
			// err quotes the URL, password and all: do not pass it on.
			return fmt.Sprintf("%q is not a valid URL; use redis://[:password@]host:port[/db]", shown)
		}
		if u.Hostname() == "" {
			return fmt.Sprintf("%q has no host; use redis://[:password@]host:port[/db]", shown)
		}
		if db := strings.Trim(u.Path, "/"); db != "" && !isWholeNumber(db) {
			return fmt.Sprintf("%q: the path must be a database number such as /0, got /%s", shown, db)
		}
	case "redis+sentinel":
		return checkSentinelURL(rest, shown)
	case "unix":
		u, err := url.Parse(raw)
		if err != nil || u.Path == "" {
			return fmt.Sprintf("%q has no socket path; use unix:///path/to/redis.sock", shown)
		}
	default:
		return fmt.Sprintf("unknown scheme %q in %q; use redis://, rediss://, redis+sentinel:// or unix://, "+
			"or leave it empty for the embedded in-memory backend", scheme, shown)
	}
	return ""
}

// checkSentinelURL checks the part of redis+sentinel://[:pw@]h1:p1,h2:p2/master[/db] after "://".
func checkSentinelURL(rest, shown string) string {
	const want = "use redis+sentinel://[:password@]host1:port1,host2:port2/master[/db]"
	rest, _, _ = strings.Cut(rest, "?")
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		rest = rest[at+1:]
	}
	hosts, path, _ := strings.Cut(rest, "/")
	if hosts == "" {
		return fmt.Sprintf("%q names no sentinel; %s", shown, want)
	}
	for h := range strings.SplitSeq(hosts, ",") {
		host, port, err := net.SplitHostPort(h)
		if err != nil || host == "" || !isPort(port) {
			return fmt.Sprintf("%q: sentinel %q is not host:port; %s", shown, h, want)
		}
	}
	master, db, _ := strings.Cut(path, "/")
	if master == "" {
		return fmt.Sprintf("%q names no master; %s", shown, want)
	}
	if db != "" && !isWholeNumber(db) {
		return fmt.Sprintf("%q: the database after the master must be a number, got %q; %s", shown, db, want)
	}
	return ""
}

// checkLegacyRedisAddr checks Harbor's "host:port[,weight,password,db]".
func checkLegacyRedisAddr(raw string) string {
	const want = `use redis://host:port/db or Harbor's "host:port[,weight,password,db]"`
	shown := redactRedisURL(raw)
	parts := strings.Split(raw, ",")
	if len(parts) > 4 {
		return fmt.Sprintf("%q has more than 4 comma-separated parts; %s", shown, want)
	}
	addr := parts[0]
	host, port := addr, ""
	if strings.Contains(addr, ":") {
		var err error
		if host, port, err = net.SplitHostPort(addr); err != nil || !isPort(port) {
			return fmt.Sprintf("%q does not start with host:port; %s", shown, want)
		}
	}
	if host == "" || strings.ContainsAny(host, " /@") {
		return fmt.Sprintf("%q does not start with host:port; %s", shown, want)
	}
	if len(parts) > 1 && parts[1] != "" && !isWholeNumber(parts[1]) {
		return fmt.Sprintf("%q: the weight must be a number, got %q; %s", shown, parts[1], want)
	}
	if len(parts) > 3 && parts[3] != "" && !isWholeNumber(parts[3]) {
		return fmt.Sprintf("%q: the database must be a number, got %q; %s", shown, parts[3], want)
	}
	return ""
}

// redactRedisURL replaces the password of a Redis URL (userinfo, or any
// query parameter whose name contains "password"), or of Harbor's legacy
// "host:port,weight,password,db", with "xxxxx".
func redactRedisURL(raw string) string {
	const mask = "xxxxx"
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		parts := strings.Split(raw, ",")
		switch {
		case len(parts) > 4: // the password held commas: drop all after the weight
			parts = append(parts[:2], mask)
		case len(parts) >= 3 && parts[2] != "":
			parts[2] = mask
		}
		return strings.Join(parts, ",")
	}
	var b strings.Builder
	b.WriteString(scheme + "://")
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		user, _, hasPassword := strings.Cut(rest[:at], ":")
		b.WriteString(user)
		if hasPassword {
			b.WriteString(":" + mask)
		}
		b.WriteString("@")
		rest = rest[at+1:]
	}
	path, query, hasQuery := strings.Cut(rest, "?")
	b.WriteString(path)
	if hasQuery {
		params := strings.Split(query, "&")
		for i, p := range params {
			if k, _, ok := strings.Cut(p, "="); ok && strings.Contains(strings.ToLower(k), "password") {
				params[i] = k + "=" + mask
			}
		}
		b.WriteString("?" + strings.Join(params, "&"))
	}
	return b.String()
}

func isWholeNumber(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 0
}

func isPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 1 && n <= 65535
}
