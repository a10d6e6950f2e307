package redistest_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated/internal/redistest"
)

// writeCerts makes a CA and a certificate for 127.0.0.1 signed by it, good
// for server and client authentication, and writes them to dir.
func writeCerts(t *testing.T, dir string) redistest.TLS {
	t.Helper()
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "redistest CA"},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	caCert, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}, caCert, &key.PublicKey, caKey)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)

	files := redistest.TLS{
		CAFile:   filepath.Join(dir, "ca.pem"),
		CertFile: filepath.Join(dir, "server.pem"),
		KeyFile:  filepath.Join(dir, "server-key.pem"),
	}
	writePEM(t, files.CAFile, "CERTIFICATE", caDER)
	writePEM(t, files.CertFile, "CERTIFICATE", der)
	writePEM(t, files.KeyFile, "PRIVATE KEY", keyDER)
	return files
}

func writePEM(t *testing.T, path, blockType string, der []byte) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der}), 0o600))
}

// tlsClient returns a go-redis client for s over TLS, trusting files.CAFile
// and presenting the certificate when withCert is set.
func tlsClient(t *testing.T, s *redistest.Server, files redistest.TLS, withCert bool) *redis.Client {
	t.Helper()
	ca, err := os.ReadFile(files.CAFile)
	require.NoError(t, err)
	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(ca))
	cfg := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	if withCert {
		pair, err := tls.LoadX509KeyPair(files.CertFile, files.KeyFile)
		require.NoError(t, err)
		cfg.Certificates = []tls.Certificate{pair}
	}
	c := redis.NewClient(&redis.Options{
		Addr: s.Addr(), TLSConfig: cfg, DialTimeout: time.Second, MaxRetries: -1,
		ContextTimeoutEnabled: true, DisableIdentity: true,
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestTLSServer(t *testing.T) {
	t.Parallel()
	files := writeCerts(t, t.TempDir())
	s := redistest.StartT(t, redistest.Options{TLS: &files})
	c := tlsClient(t, s, files, false)
	ctx := context.Background()
	require.NoError(t, c.Set(ctx, "k", "v", 0).Err())
	require.Equal(t, "v", c.Get(ctx, "k").Val())

	// The port speaks TLS only: a plain PING gets no +PONG.
	conn, err := net.DialTimeout("tcp", s.Addr(), time.Second)
	require.NoError(t, err)
	require.NoError(t, conn.SetDeadline(time.Now().Add(time.Second)))
	_, err = io.WriteString(conn, "PING\r\n")
	require.NoError(t, err)
	line, _ := bufio.NewReader(conn).ReadString('\n')
	require.NotEqual(t, "+PONG\r\n", line, "plain PING on the TLS port")
	require.NoError(t, conn.Close())

	require.NoError(t, s.Restart())
	require.Eventually(t, func() bool { return ping(c, time.Second) == nil },
		2*time.Second, 10*time.Millisecond, "ping over TLS after Restart")
}

func TestTLSServerAuthClients(t *testing.T) {
	t.Parallel()
	files := writeCerts(t, t.TempDir())
	files.AuthClients = true
	s := redistest.StartT(t, redistest.Options{TLS: &files})
	require.NoError(t, ping(tlsClient(t, s, files, true), time.Second), "with a client certificate")
	require.Error(t, ping(tlsClient(t, s, files, false), time.Second), "without a client certificate")
}

func TestTLSOptionsChecked(t *testing.T) {
	t.Parallel()
	_, err := redistest.Start(redistest.Options{TLS: &redistest.TLS{CertFile: "x"}})
	require.ErrorContains(t, err, "Options.TLS")
	_, err = redistest.Start(redistest.Options{Args: []string{"--tls-port", "1"}})
	require.ErrorContains(t, err, "--tls-port")
	missing := filepath.Join(t.TempDir(), "missing.pem")
	_, err = redistest.Start(redistest.Options{TLS: &redistest.TLS{CertFile: missing, KeyFile: missing, CAFile: missing}})
	require.ErrorContains(t, err, "CAFile")
}
