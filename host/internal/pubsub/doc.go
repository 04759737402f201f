// Package pubsub listens on Redis pub/sub channels for a host: one
// connection, every channel, reconnecting with backoff when Redis goes
// away. Messages are hints that make things happen at once (a stop reaches
// the job's host, an idle worker wakes for a new job); whoever relies on
// them also has a way to catch up on what was missed while disconnected,
// which OnConnect triggers.
//
// It only delivers messages to handlers; it never publishes and never
// decides what a message means.
package pubsub
