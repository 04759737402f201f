package daemon_test

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/host/internal/config"
	"github.com/berth-dev/berth/host/internal/testkit/hosttest"
	"github.com/berth-dev/berth/host/internal/testkit/tlstest"
)

// The API serves HTTPS with the configured certificate and key, and with
// https_config.client_ca it requires a client certificate from that CA.
func TestHTTPS(t *testing.T) {
	t.Parallel()
	ca := tlstest.NewCA(t)
	cert, key := ca.Server(t)
	other := tlstest.NewCA(t)
	cases := []struct {
		name     string
		clientCA string
		present  *tls.Certificate
		trust    *x509.CertPool
		wantErr  string // of the request; "" = 200
	}{
		{name: "ServerOnly", trust: ca.Pool()},
		{name: "UntrustedServer", trust: other.Pool(), wantErr: "certificate signed by unknown authority"},
		{name: "ClientCertRequired", clientCA: ca.File, trust: ca.Pool(), wantErr: "certificate required"},
		{name: "ClientCertAccepted", clientCA: ca.File, trust: ca.Pool(), present: ptrCert(ca.Client(t, "core"))},
		{name: "ClientCertOfOtherCA", clientCA: ca.File, trust: ca.Pool(), present: ptrCert(other.Client(t, "intruder")), wantErr: "tls: unknown certificate authority"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := hosttest.NewCluster(t, "demo").Start(t, func(c *config.Config) {
				c.Protocol = "https"
				c.HTTPSConfig = config.HTTPSConfig{Cert: cert, Key: key, ClientCA: tc.clientCA}
			})
			url := "https://" + strings.TrimPrefix(h.URL, "http://")
			tlsConf := &tls.Config{RootCAs: tc.trust, MinVersion: tls.VersionTLS12}
			if tc.present != nil {
				tlsConf.Certificates = []tls.Certificate{*tc.present}
			}
			client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConf}}
			defer client.CloseIdleConnections()
			req, _ := http.NewRequest(http.MethodGet, url+"/api/v1/jobs?kind=Generic", nil)
			req.Header.Set("Authorization", hosttest.Auth)
			resp, err := client.Do(req)
			if tc.wantErr != "" {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("GET over HTTPS answered %d; want it refused with %q", resp.StatusCode, tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("GET over HTTPS: %v; want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("GET over HTTPS: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.TLS == nil {
				t.Fatalf("GET over HTTPS = %d (TLS %v); want 200 over TLS", resp.StatusCode, resp.TLS != nil)
			}
			// Plain HTTP to the TLS port gets nothing useful.
			plain, err := http.Get(h.URL + "/api/v1/stats")
			if err == nil {
				defer plain.Body.Close()
				if plain.StatusCode == http.StatusOK {
					t.Error("plain HTTP to the HTTPS port answered 200")
				}
			}
		})
	}
}

func ptrCert(c tls.Certificate) *tls.Certificate { return &c }
