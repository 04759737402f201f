// Package redisx owns the host's connection to Redis: it parses the Redis URL
// (ParseURL), builds the one redigo pool the whole host shares (Open,
// Backend.Pool), and, when no URL is configured, runs an embedded in-memory
// Redis (miniredis) so that the host works on a bare machine.
//
// Supported URLs: redis://, rediss:// (TLS), unix:// (socket),
// redis+sentinel:// (primary found through Sentinel) and Harbor's legacy
// "host:port,weight,password,db". The forms with a scheme may carry
// Harbor's ?idle_timeout_seconds=N, which wins over Options.IdleTimeout.
// See ParseURL.
//
// Pool behaviour, for every backend:
//   - There is no read timeout: pub/sub subscribers wait in Receive
//     indefinitely. Bound single calls with redis.DoContext. Writes time out
//     after 10 s; TCP keep-alive (15 s) notices a vanished peer.
//   - A connection idle for over a minute is PINGed before it is handed out,
//     and dropped if the PING fails.
//   - MaxActive defaults to no cap; see Options.
//
// Sentinel: every new connection asks the sentinels, in the order given, for
// the primary, connects to it and checks that it reports ROLE master. A
// monitor goroutine re-reads the primary's address once a second, and
// borrowing a connection to any other node drops it, so that after a
// failover the pool moves to the new primary within about a second without a
// round trip per borrow.
//
// Embedded: miniredis listens on a loopback TCP port and the pool dials it
// like any server, so gocraft/work's Lua scripts and pub/sub work unchanged.
// TTLs advance once a second. Nothing survives the process: Open logs a
// warning and Describe says so.
//
// Other packages take the pool from here and neither dial Redis nor import
// miniredis themselves; key names and commands belong to the packages that
// use the pool.
//
// It knows nothing of jobs or keys: it only hands out connections.
package redisx
