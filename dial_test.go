package federated_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/redistest"
	"github.com/redfed/federated/internal/replyguard"
)

// TestDialTLSServerName checks that connections are dialled as go-redis
// dials them: the certificate is checked against TLSConfig.ServerName, or,
// when that is empty, against the host of the server's address.
func TestDialTLSServerName(t *testing.T) {
	certs := writeTestCerts(t) // valid for 127.0.0.1 and redis.test
	servers := startTLS(t, 1, certs, false)
	roots := certPool(t, certs.caFile)
	localhost := fmt.Sprintf("localhost:%d", servers[0].Port())

	tests := []struct {
		name       string
		addr       string
		serverName string
		want       string // in the error; empty for success
	}{
		{"the address's IP", servers[0].Addr(), "", ""},
		{"the address's host name", localhost, "", "not localhost"},
		{"ServerName over the address", localhost, "redis.test", ""},
		{"a wrong ServerName", servers[0].Addr(), "other.test", "not other.test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := testOptions()
			opts.TLSConfig = &tls.Config{RootCAs: roots, ServerName: tt.serverName, MinVersion: tls.VersionTLS12}
			c := newClient(t, federated.Config{Nodes: map[string]federated.Node{"a": {Address: tt.addr}}, Options: opts})
			err := c.Set(context.Background(), "k", "v", 0).Err()
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

// certPool is a pool of the certificates in a PEM file.
func certPool(t *testing.T, file string) *x509.CertPool {
	t.Helper()
	pem, err := os.ReadFile(file)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(pem), "certificates in %s", file)
	return pool
}

// TestDialGuardsTLS sends a hostile reply over TLS: the guard sits above
// the TLS connection, on the plaintext.
func TestDialGuardsTLS(t *testing.T) {
	certs := writeTestCerts(t)
	cert, err := tls.LoadX509KeyPair(certs.serverCert, certs.serverKey)
	require.NoError(t, err)
	h := startHostileServer(t, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		helloRefused, "*2000000000\r\n", 0)
	checkHostileReply(t, h, &tls.Config{RootCAs: certPool(t, certs.caFile), MinVersion: tls.VersionTLS12}, nil,
		replyguard.ErrTooLarge, `header "*2000000000" declares 2000000000 elements`, 0, true)
}

// TestDialKeepsTheReuseCheck closes a pooled connection from the server's
// side. go-redis peeks at the socket of an idle connection before reusing
// it and dials a new one when the server has closed it; the guarded
// connection must still let it, or the next command would fail on the
// closed connection and the server be taken for down.
func TestDialKeepsTheReuseCheck(t *testing.T) {
	servers := redistest.StartN(t, 1)
	opts := testOptions()
	opts.PoolSize = 1
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: opts})
	direct := directClient(t, servers[0].Addr())
	ctx := context.Background()
	for i := range 3 {
		id, err := c.Group("k").Do(ctx, "CLIENT", "ID").Int64()
		require.NoError(t, err)
		require.NoError(t, direct.ClientKillByFilter(ctx, "ID", fmt.Sprint(id)).Err())
		require.Eventually(t, func() bool {
			list, err := direct.ClientList(ctx).Result()
			require.NoError(t, err)
			return !containsClientID(list, id)
		}, 5*time.Second, 5*time.Millisecond, "the server closes the connection")

		require.NoError(t, c.Set(ctx, "k", i, 0).Err(), "a command after the server closed the pooled connection")
		assert.False(t, c.IsServerDown(servers[0].Addr()))
	}
}

func containsClientID(list string, id int64) bool {
	for line := range strings.Lines(list) {
		if strings.HasPrefix(line, fmt.Sprintf("id=%d ", id)) {
			return true
		}
	}
	return false
}

// go-redis's own log lines go to Options.Logger, not to standard error.
func TestGoRedisLogsToTheLogger(t *testing.T) {
	servers := redistest.StartN(t, 1)
	var buf syncBuffer
	opts := testOptions()
	opts.Logger = slog.New(slog.NewTextHandler(&buf, nil))
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: opts})
	require.NoError(t, servers[0].Kill())
	require.Error(t, c.Set(context.Background(), "k", "v", 0).Err())
	require.Eventually(t, func() bool { return strings.Contains(buf.String(), "source=go-redis") }, 5*time.Second, 10*time.Millisecond)
	assert.Contains(t, buf.String(), "failed to dial")
}

// syncBuffer is a bytes.Buffer for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
