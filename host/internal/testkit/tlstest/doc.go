// Package tlstest makes a throwaway certificate authority for tests, with
// server certificates for 127.0.0.1 and localhost and client
// certificates, written as PEM files in the test's temp dir.
//
//	ca := tlstest.NewCA(t)
//	cert, key := ca.Server(t)      // files for a server's config
//	pool := ca.Pool()              // a client's RootCAs
//	client := ca.Client(t, "core") // a tls.Certificate to present
//
// Tests only: nothing outside tests may import it.
package tlstest
