package federated_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/journal"
	"github.com/redfed/federated/internal/redistest"
	"github.com/redfed/federated/metrics"
	"github.com/redfed/federated/syncer"
)

// password is distinctive enough that finding it anywhere is a leak.
const password = "pw-Zq81-hunter2-secret"

// lockedBuffer is a bytes.Buffer that a client's logger may write to while
// the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// assertNoSecret fails when text holds the password.
func assertNoSecret(t *testing.T, what, text string) {
	t.Helper()
	assert.NotContains(t, text, password, "%s shows the password", what)
}

func TestPasswordAuth(t *testing.T) {
	servers := redistest.StartN(t, 2, redistest.Options{Args: []string{"--requirepass", password}})
	ctx := context.Background()

	opts := testOptions()
	opts.Password = password
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: opts})
	for i := range 20 {
		require.NoError(t, c.Set(ctx, fmt.Sprint("k", i), i, 0).Err())
	}
	require.Equal(t, "7", c.Get(ctx, "k7").Val())
	at := time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
	require.NoError(t, c.Record(ctx, "web1.sfo", "cpu.user", at, 42))
	points, err := rangeOf(ctx, newStore(t, c), "web1.sfo", "cpu.user", at, at)
	require.NoError(t, err)
	require.Equal(t, []metrics.Point{{Time: at, Value: 42}}, points)

	tests := []struct {
		name     string
		password string
		want     string // the server's error code, as a regular expression
		// The connection is refused before any command is sent (AUTH
		// fails), rather than each command being refused.
		refused bool
	}{
		{"wrong password", "not-" + password, "WRONGPASS", true},
		// NOAUTH for a short command; a long one (a metric write) gets a
		// protocol error from Redis, which the client explains.
		{"no password", "", "(NOAUTH|authentication required)", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := testOptions()
			opts.Password = tt.password
			bad := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: opts})
			err := bad.Get(ctx, "k7").Err()
			require.Error(t, err)
			assert.Regexp(t, tt.want, err.Error())
			assertNoSecret(t, "the error", err.Error())
			assertNoSecret(t, "the error (%+v)", fmt.Sprintf("%+v %#v", err, err))

			err = bad.Record(ctx, "web1.sfo", "cpu.user", at, 1)
			require.Error(t, err)
			assert.Regexp(t, tt.want, err.Error())
			assertNoSecret(t, "the Record error", err.Error())
			var got string
			err = bad.Chain().Get("k7", func(v string, err error) {
				require.Error(t, err, "the callback gets the error, not an empty value")
				got = v
			}).Poll(ctx)
			require.Error(t, err)
			assert.Empty(t, got)
			assert.Regexp(t, tt.want, err.Error())
			if tt.refused {
				assert.Contains(t, err.Error(), "server 127.0.0.1:", "the pipeline error names the server")
			}
			assertNoSecret(t, "the Poll error", err.Error())

			for _, s := range servers {
				assert.False(t, bad.IsServerDown(s.Addr()), "a refused AUTH is an answer: %s must not be marked down", s.Addr())
			}
		})
	}
}

func TestPasswordNotLogged(t *testing.T) {
	servers := redistest.StartN(t, 2, redistest.Options{Args: []string{"--requirepass", password}})
	ctx := context.Background()
	var text, js lockedBuffer
	handler := teeHandler{
		slog.NewTextHandler(&text, &slog.HandlerOptions{Level: slog.LevelDebug}),
		slog.NewJSONHandler(&js, &slog.HandlerOptions{Level: slog.LevelDebug}),
	}
	opts := testOptions()
	opts.Password = password
	opts.Logger = slog.New(handler)
	cfg := federated.Config{
		Nodes:   map[string]federated.Node{"group": {Addresses: redistest.Addrs(servers)}},
		Options: opts,
	}
	c := newClient(t, cfg)
	require.NoError(t, c.Set(ctx, "k", "v", 0).Err())

	// A failover: the current server dies, is found down, comes back and
	// is found up.
	cur, err := c.NodeToServer("group")
	require.NoError(t, err)
	dead := serverByAddr(servers, cur)
	require.NoError(t, dead.Kill())
	require.NoError(t, c.Set(ctx, "k", "v2", 0).Err(), "the write fails over")
	require.True(t, c.IsServerDown(cur))
	require.Eventually(t, func() bool { return strings.Contains(text.String(), "server still down") },
		5*time.Second, 10*time.Millisecond, "a failed re-check is logged")
	require.NoError(t, dead.Restart())
	require.Eventually(t, func() bool { return !c.IsServerDown(cur) }, 5*time.Second, 10*time.Millisecond)

	// Whoever logs the configuration or the options gets them redacted.
	opts.Logger.Info("configuration", "config", cfg, "options", c.Options())

	for _, want := range []string{"server down", "node failed over", "server back up", "configuration"} {
		assert.Contains(t, text.String(), want)
		assert.Contains(t, js.String(), want)
	}
	assert.Contains(t, text.String(), "[REDACTED]")
	assertNoSecret(t, "the text log", text.String())
	assertNoSecret(t, "the JSON log", js.String())
	for _, st := range c.Status() {
		assertNoSecret(t, "the status", fmt.Sprintf("%+v", st))
	}
}

// teeHandler sends every record to several handlers.
type teeHandler []slog.Handler

func (h teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	for _, x := range h {
		if x.Enabled(ctx, l) {
			return true
		}
	}
	return false
}

func (h teeHandler) Handle(ctx context.Context, r slog.Record) error {
	var errs []error
	for _, x := range h {
		errs = append(errs, x.Handle(ctx, r.Clone()))
	}
	return errors.Join(errs...)
}

func (h teeHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	out := make(teeHandler, len(h))
	for i, x := range h {
		out[i] = x.WithAttrs(attrs)
	}
	return out
}

func (h teeHandler) WithGroup(name string) slog.Handler {
	out := make(teeHandler, len(h))
	for i, x := range h {
		out[i] = x.WithGroup(name)
	}
	return out
}

func TestPasswordRedactedInOutput(t *testing.T) {
	cfg := federated.Config{
		Nodes: map[string]federated.Node{"a": {Address: "127.0.0.1:7000"}},
		Options: federated.Options{
			Username: "writer",
			Password: password,
			TLS:      &federated.TLSFiles{CAFile: "/etc/redfed/ca.pem", KeyFile: "/etc/redfed/client-key.pem"},
		},
	}
	outputs := map[string]string{
		"%v %+v %#v of a Config":  fmt.Sprintf("%v %+v %#v", cfg, cfg, cfg),
		"%v %+v %#v of *Config":   fmt.Sprintf("%v %+v %#v", &cfg, &cfg, &cfg),
		"%s %q of Options":        fmt.Sprintf("%s %q", cfg.Options, cfg.Options),
		"%v %+v %#v of *Options":  fmt.Sprintf("%v %+v %#v", &cfg.Options, &cfg.Options, &cfg.Options),
		"fmt.Sprint of a Config":  fmt.Sprint(cfg),
		"fmt.Sprintln of Options": fmt.Sprintln(cfg.Options),
	}
	var text, js bytes.Buffer
	slog.New(slog.NewTextHandler(&text, nil)).Info("x", "config", cfg, "options", cfg.Options)
	slog.New(slog.NewJSONHandler(&js, nil)).Info("x", "config", cfg, "options", cfg.Options)
	outputs["slog text"] = text.String()
	outputs["slog JSON"] = js.String()
	for what, out := range outputs {
		assertNoSecret(t, what, out)
		assert.Contains(t, out, "[REDACTED]", what)
		assert.Contains(t, out, "writer", "%s: the user name is no secret", what)
		assert.Contains(t, out, "/etc/redfed/client-key.pem", "%s: key paths are no secret", what)
	}
	assert.Contains(t, fmt.Sprintf("%#v", cfg.Options), "federated.Options{", "GoString names the type")

	// The client keeps the password to use it, and prints it redacted too.
	c := newClient(t, federated.Config{Nodes: cfg.Nodes, Options: federated.Options{Password: password}})
	assert.Equal(t, password, c.Options().Password)
	assertNoSecret(t, "the client's options", fmt.Sprintf("%v %+v %#v", c.Options(), c.Options(), c.Options()))

	// No password, nothing to redact.
	assert.NotContains(t, fmt.Sprint(federated.Options{}), "[REDACTED]")
}

func TestPasswordNotInConfigErrors(t *testing.T) {
	dir := t.TempDir()
	docs := map[string]string{
		"unknown key":        "nodes:\n  a: {address: \"h:1\"}\noptions:\n  password: " + password + "\n  comand_timeout: 1\n",
		"bad duration":       "nodes:\n  a: {address: \"h:1\"}\noptions:\n  password: " + password + "\n  command_timeout: soon\n",
		"bad address":        "nodes:\n  a: {address: \"h\"}\noptions:\n  password: " + password + "\n",
		"no nodes":           "options:\n  password: " + password + "\n",
		"password a list":    "nodes:\n  a: {address: \"h:1\"}\noptions:\n  password: [" + password + "]\n",
		"password a map":     "nodes:\n  a: {address: \"h:1\"}\noptions:\n  password: {" + password + ": 1}\n",
		"broken yaml after":  "nodes:\n  a: {address: \"h:1\"}\noptions:\n  password: " + password + "\n  ring: [\n",
		"broken quote":       "nodes:\n  a: {address: \"h:1\"}\noptions:\n  password: \"" + password + "\n",
		"bad escape":         "nodes:\n  a: {address: \"h:1\"}\noptions:\n  password: \"" + password + "\\q\"\n",
		"tab indent":         "nodes:\n  a: {address: \"h:1\"}\noptions:\n\tpassword: " + password + "\n",
		"missing TLS file":   "nodes:\n  a: {address: \"h:1\"}\noptions:\n  password: " + password + "\n  tls: {ca_file: " + filepath.Join(dir, "nope.pem") + "}\n",
		"duplicate password": "nodes:\n  a: {address: \"h:1\"}\noptions:\n  password: " + password + "\n  password: " + password + "\n",
		"json":               `{"nodes": {"a": {"address": "h:1"}}, "options": {"password": "` + password + `", "ring": "ketama"}}`,
	}
	for name, doc := range docs {
		t.Run(name, func(t *testing.T) {
			_, err := federated.ParseConfig([]byte(doc))
			require.ErrorIs(t, err, federated.ErrInvalidConfig)
			assertNoSecret(t, "the error", err.Error())

			path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".yaml")
			require.NoError(t, os.WriteFile(path, []byte(doc), 0o600))
			_, err = federated.LoadConfig(path)
			require.ErrorIs(t, err, federated.ErrInvalidConfig)
			assertNoSecret(t, "the LoadConfig error", err.Error())
		})
	}
	_, err := federated.New(federated.Config{Options: federated.Options{Password: password}})
	require.ErrorIs(t, err, federated.ErrInvalidConfig)
	assertNoSecret(t, "the New error", err.Error())
}

// aclRules let a user write and read metrics, the journal, the horizon, the
// origin hash and the syncer's cursors and marks, and nothing else: metric keys start
// with a period ("2026-11-25:..." or "2026-11-25T13:..."); the scripts need
// EVALSHA and EVAL (@scripting), TIME, GET, ZADD, TYPE, ZCARD, ZCOUNT,
// ZRANGE, ZREVRANGE, ZSCORE, SCAN, UNLINK, ZREM, EXISTS, HGET, HMGET, HSET
// and HDEL, the reads ZRANGEBYSCORE, ZREVRANGEBYSCORE and ZSCAN.
// Administrative and dangerous commands (FLUSHALL, CONFIG, KEYS, DEBUG,
// INFO, ...) are refused: the syncer then does not see a peer restart (see
// journal.RunLua).
var aclRules = []any{
	"on", ">" + password, "resetkeys", "resetchannels",
	"~[0-9][0-9][0-9][0-9]-*", "~journal", "~journal:horizon", "~journal:origin", "~syncer:cursors", "~syncer:marks",
	"-@all", "+@read", "+@write", "+@scripting", "+@connection", "+time",
	"-@dangerous", "-@admin",
}

func TestACLUser(t *testing.T) {
	servers := redistest.StartN(t, 3)
	ctx := context.Background()
	for _, s := range servers {
		admin := directClient(t, s.Addr())
		require.NoError(t, admin.Do(ctx, append([]any{"ACL", "SETUSER", "writer"}, aclRules...)...).Err())
		require.NoError(t, admin.Set(ctx, "other", "admin's", 0).Err())
	}
	opts := testOptions()
	opts.Username, opts.Password = "writer", password
	c := newClient(t, federated.Config{
		Nodes: map[string]federated.Node{
			"group":  {Addresses: redistest.Addrs(servers[:2])},
			"single": {Address: servers[2].Addr()},
		},
		Options: opts,
	})

	// What the metrics system does works.
	day := time.Now().UTC().Truncate(24 * time.Hour)
	// In the past, so that Latest reads it: from midnight to 01:00 UTC,
	// an hour past midnight was ahead of the clock.
	at := time.Now().Add(-5 * time.Minute).Truncate(time.Second)
	require.NoError(t, c.Record(ctx, "web1.sfo", "cpu.user", at, 1))
	r := newRecorder(t, c, metrics.RecorderOptions{})
	for i := range 100 {
		require.NoError(t, r.Add(context.Background(), fmt.Sprintf("web%d.sfo", i%7), "cpu.user", at.Add(time.Duration(i)*time.Second), float64(i)))
	}
	require.NoError(t, r.Flush(ctx))
	require.Equal(t, int64(100), r.Stats().Written)
	points, err := rangeOf(ctx, newStore(t, c), "web1.sfo", "cpu.user", at, at.Add(time.Hour))
	require.NoError(t, err)
	require.Len(t, points, 1+15, "the point of Record and those of the Recorder for web1 (i = 1, 8, ..., 99)")
	latest, err := newStore(t, c).Latest(ctx, metrics.Series{Host: "web1.sfo", Metric: "cpu.user"})
	require.NoError(t, err)
	assert.Equal(t, float64(99), latest.Value)
	hosts, err := newStore(t, c).Hosts(ctx, time.Time{})
	require.NoError(t, err)
	assert.Len(t, hosts, 7)
	// Writes went to one server of the group: Check sees the replicas
	// differ, Repair copies what is missing, then they agree.
	report, err := newStore(t, c).Check(ctx, metrics.CheckOptions{})
	require.NoError(t, err)
	require.Len(t, report.Groups, 1)
	assert.Equal(t, "group", report.Groups[0].Node)
	require.Positive(t, report.Divergent, "%+v", report)
	repaired, err := newStore(t, c).Repair(ctx, metrics.CheckOptions{})
	require.NoError(t, err)
	assert.Equal(t, report.Divergent, repaired.Repaired)
	report, err = newStore(t, c).Check(ctx, metrics.CheckOptions{})
	require.NoError(t, err)
	assert.True(t, report.OK(), "%+v", report)
	drop, err := newStore(t, c).DropBefore(ctx, day.AddDate(0, 0, -3))
	require.NoError(t, err, "DropBefore scans and sets the horizon")
	assert.Zero(t, drop.Total)
	for _, addr := range c.Servers() {
		h, err := journal.Horizon(ctx, c, addr, journal.KeysOf("journal"))
		require.NoError(t, err)
		assert.Equal(t, day.AddDate(0, 0, -3).Format("2006-01-02"), h)
	}
	// The syncer replicates the group with the same user: its cursors, the
	// horizons, the journal and the merges.
	group := redistest.Addrs(servers[:2])
	s, err := syncer.NewFromClient(c, group, syncer.Options{NoAntiEntropy: true})
	require.NoError(t, err)
	syncCtx, stopSync := context.WithCancel(ctx)
	synced := make(chan error, 1)
	go func() { synced <- s.Run(syncCtx) }()
	key, err := c.MetricKey(at, "synced", "cpu.user")
	require.NoError(t, err)
	member := fmt.Sprintf("%d:5", at.Unix())
	_, err = merge(ctx, c, group[0], []journal.KeyMembers{{Key: key, Members: []string{member}}})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		ms, err := journal.Members(ctx, c, group[1], []string{key})
		return err == nil && len(ms[0]) == 1
	}, 5*time.Second, 20*time.Millisecond, "the syncer copied the point under the ACL user")
	stopSync()
	require.ErrorIs(t, <-synced, context.Canceled)
	for _, p := range s.Stats().Peers {
		assert.Zero(t, p.Errors, "%s from %s: %s", p.Local, p.Peer, p.LastError)
	}

	// What it may not do is refused with NOPERM, clearly, and no server is
	// marked down for it.
	refused := []struct {
		name string
		run  func() error
	}{
		{"SET of another key", func() error { return c.Set(ctx, "other", "x", 0).Err() }},
		{"GET of another key", func() error { return c.Get(ctx, "other").Err() }},
		{"pipelined SET", func() error { return c.Chain().Set("other", "x").Poll(ctx) }},
		{"FLUSHALL", func() error { return c.Do(ctx, "FLUSHALL").Err() }},
		{"CONFIG SET", func() error { return c.Group("k").Do(ctx, "CONFIG", "SET", "maxmemory", "1").Err() }},
		{"KEYS", func() error { return c.Group("k").Do(ctx, "KEYS", "*").Err() }},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run()
			require.Error(t, err)
			assert.Contains(t, err.Error(), "NOPERM")
			assert.NotErrorIs(t, err, federated.ErrServerDown)
			var reply redis.Error
			assert.True(t, errors.As(err, &reply), "%v is Redis's answer, a redis.Error", err)
			assertNoSecret(t, "the error", err.Error())
		})
	}
	err = c.Chain().Set("other", "x").Poll(ctx)
	assert.Contains(t, err.Error(), "set other", "a pipeline error names the command and key")
	for _, s := range servers {
		assert.False(t, c.IsServerDown(s.Addr()), "a refused command is an answer: %s must not be marked down", s.Addr())
		assert.Equal(t, "admin's", directClient(t, s.Addr()).Get(ctx, "other").Val(), "nothing written to another key")
	}
}

// testCerts are the PEM files TestTLS* use: a CA, a server certificate for
// 127.0.0.1 (good for client authentication too, for the readiness probe)
// and a client certificate, all signed by the CA, valid for an hour.
type testCerts struct {
	caFile, serverCert, serverKey, clientCert, clientKey string
	otherCA                                              string // a CA that signed nothing here
}

func writeTestCerts(t *testing.T) testCerts {
	t.Helper()
	dir := t.TempDir()
	caKey, caCert, caDER := newCA(t, "redfed test CA")
	_, _, otherDER := newCA(t, "some other CA")
	certs := testCerts{
		caFile:     filepath.Join(dir, "ca.pem"),
		otherCA:    filepath.Join(dir, "other-ca.pem"),
		serverCert: filepath.Join(dir, "server.pem"),
		serverKey:  filepath.Join(dir, "server-key.pem"),
		clientCert: filepath.Join(dir, "client.pem"),
		clientKey:  filepath.Join(dir, "client-key.pem"),
	}
	writePEMFile(t, certs.caFile, "CERTIFICATE", caDER)
	writePEMFile(t, certs.otherCA, "CERTIFICATE", otherDER)
	issue(t, caKey, caCert, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:    []string{"redis.test"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}, certs.serverCert, certs.serverKey)
	issue(t, caKey, caCert, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "redfed client"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, certs.clientCert, certs.clientKey)
	return certs
}

func newCA(t *testing.T, name string) (*ecdsa.PrivateKey, *x509.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return key, cert, der
}

// issue signs a leaf certificate from tmpl with the CA and writes it and its
// key.
func issue(t *testing.T, caKey *ecdsa.PrivateKey, ca *x509.Certificate, tmpl *x509.Certificate, certPath, keyPath string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Minute), time.Now().Add(time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	writePEMFile(t, certPath, "CERTIFICATE", der)
	writePEMFile(t, keyPath, "PRIVATE KEY", keyDER)
}

func writePEMFile(t *testing.T, path, blockType string, der []byte) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der}), 0o600))
}

// startTLS starts servers that speak TLS only.
func startTLS(t *testing.T, n int, certs testCerts, authClients bool) []*redistest.Server {
	t.Helper()
	return redistest.StartN(t, n, redistest.Options{TLS: &redistest.TLS{
		CertFile: certs.serverCert, KeyFile: certs.serverKey, CAFile: certs.caFile, AuthClients: authClients,
	}})
}

// useServers writes and reads through every node and records a point.
func useServers(t *testing.T, c *federated.Client) {
	t.Helper()
	ctx := context.Background()
	for i := range 20 {
		k := fmt.Sprint("tls-", i)
		require.NoError(t, c.Set(ctx, k, i, 0).Err())
		require.Equal(t, fmt.Sprint(i), c.Get(ctx, k).Val())
	}
	at := time.Now().Add(-time.Minute).Truncate(time.Second)
	require.NoError(t, c.Record(ctx, "web1.sfo", "cpu.user", at, 1))
	points, err := rangeOf(ctx, newStore(t, c), "web1.sfo", "cpu.user", at, at)
	require.NoError(t, err)
	require.Len(t, points, 1)
}

func TestTLSConfigInGo(t *testing.T) {
	certs := writeTestCerts(t)
	servers := startTLS(t, 2, certs, false)
	ca, err := os.ReadFile(certs.caFile)
	require.NoError(t, err)
	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(ca))

	opts := testOptions()
	opts.TLSConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: opts})
	useServers(t, c)

	// Without TLS the servers do not answer: the port speaks TLS only.
	plain := testOptions()
	plain.CommandTimeout = 300 * time.Millisecond
	pc := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: plain})
	require.Error(t, pc.Get(context.Background(), "tls-1").Err())
}

func TestTLSConfigFile(t *testing.T) {
	certs := writeTestCerts(t)
	servers := startTLS(t, 2, certs, true) // a client certificate is required
	dir := t.TempDir()
	nodes := fmt.Sprintf("nodes:\n  redis_1: {address: %q}\n  redis_2: {address: %q}\n", servers[0].Addr(), servers[1].Addr())
	load := func(t *testing.T, tlsYAML string) (federated.Config, error) {
		t.Helper()
		path := filepath.Join(dir, "fed.yaml")
		doc := nodes + "options:\n  command_timeout: 2s\n  base_retry_interval: 50ms\n  tls:\n" + tlsYAML
		require.NoError(t, os.WriteFile(path, []byte(doc), 0o600))
		cfg, err := federated.LoadConfig(path)
		if err == nil {
			cfg.Options.Logger = slog.New(slog.DiscardHandler)
		}
		return cfg, err
	}

	t.Run("client certificate", func(t *testing.T) {
		cfg, err := load(t, fmt.Sprintf("    ca_file: %s\n    cert_file: %s\n    key_file: %s\n",
			certs.caFile, certs.clientCert, certs.clientKey))
		require.NoError(t, err)
		assert.Equal(t, &federated.TLSFiles{CAFile: certs.caFile, CertFile: certs.clientCert, KeyFile: certs.clientKey}, cfg.Options.TLS)
		c := newClient(t, cfg)
		require.NotNil(t, c.Options().TLSConfig, "New builds the TLS configuration")
		useServers(t, c)
	})
	t.Run("server name", func(t *testing.T) {
		cfg, err := load(t, fmt.Sprintf("    ca_file: %s\n    cert_file: %s\n    key_file: %s\n    server_name: redis.test\n",
			certs.caFile, certs.clientCert, certs.clientKey))
		require.NoError(t, err)
		useServers(t, newClient(t, cfg))

		cfg, err = load(t, fmt.Sprintf("    ca_file: %s\n    cert_file: %s\n    key_file: %s\n    server_name: wrong.test\n",
			certs.caFile, certs.clientCert, certs.clientKey))
		require.NoError(t, err)
		err = newClient(t, cfg).Get(context.Background(), "k").Err()
		require.Error(t, err)
		assert.Contains(t, err.Error(), "wrong.test", "the certificate is not valid for the name asked for")
	})
	t.Run("insecure skip verify", func(t *testing.T) {
		cfg, err := load(t, fmt.Sprintf("    cert_file: %s\n    key_file: %s\n    insecure_skip_verify: true\n",
			certs.clientCert, certs.clientKey))
		require.NoError(t, err)
		useServers(t, newClient(t, cfg))
	})
	t.Run("unknown authority", func(t *testing.T) {
		cfg, err := load(t, fmt.Sprintf("    ca_file: %s\n    cert_file: %s\n    key_file: %s\n",
			certs.otherCA, certs.clientCert, certs.clientKey))
		require.NoError(t, err)
		err = newClient(t, cfg).Get(context.Background(), "k").Err()
		require.Error(t, err)
		var unknown x509.UnknownAuthorityError
		assert.True(t, errors.As(err, &unknown), "got %v, want x509.UnknownAuthorityError", err)
	})
	t.Run("no client certificate", func(t *testing.T) {
		cfg, err := load(t, fmt.Sprintf("    ca_file: %s\n", certs.caFile))
		require.NoError(t, err)
		require.Error(t, newClient(t, cfg).Get(context.Background(), "k").Err(), "the servers require a client certificate")
	})
	t.Run("TLSConfig in Go wins", func(t *testing.T) {
		cfg, err := load(t, "    {}\n")
		require.NoError(t, err)
		require.Equal(t, &federated.TLSFiles{}, cfg.Options.TLS)
		cfg.Options.TLS = &federated.TLSFiles{CAFile: filepath.Join(dir, "missing.pem")} // never read
		pair, err := tls.LoadX509KeyPair(certs.clientCert, certs.clientKey)
		require.NoError(t, err)
		cfg.Options.TLSConfig = &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{pair}}
		c := newClient(t, cfg)
		assert.Same(t, cfg.Options.TLSConfig, c.Options().TLSConfig)
		useServers(t, c)
	})
}

func TestTLSConfigFileErrors(t *testing.T) {
	certs := writeTestCerts(t)
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	require.NoError(t, os.WriteFile(notPEM, []byte("hello\n"), 0o600))
	missing := filepath.Join(dir, "missing.pem")
	tests := []struct {
		name  string
		files federated.TLSFiles
		want  []string
	}{
		{"missing CA", federated.TLSFiles{CAFile: missing}, []string{"options.tls.ca_file", missing}},
		{"CA not PEM", federated.TLSFiles{CAFile: notPEM}, []string{"options.tls.ca_file", "no PEM certificate"}},
		{"CA a directory", federated.TLSFiles{CAFile: dir}, []string{"options.tls.ca_file", "not a regular file"}},
		{"CA a device", federated.TLSFiles{CAFile: os.DevNull}, []string{"options.tls.ca_file", "not a regular file"}},
		{"missing cert", federated.TLSFiles{CertFile: missing, KeyFile: certs.clientKey}, []string{"options.tls.cert_file", missing}},
		{"missing key", federated.TLSFiles{CertFile: certs.clientCert, KeyFile: missing}, []string{"options.tls.key_file", missing}},
		{"cert without key", federated.TLSFiles{CertFile: certs.clientCert}, []string{"options.tls.key_file", "not set"}},
		{"key without cert", federated.TLSFiles{KeyFile: certs.clientKey}, []string{"options.tls.cert_file", "not set"}},
		{"key of another cert", federated.TLSFiles{CertFile: certs.clientCert, KeyFile: certs.serverKey}, []string{"options.tls.cert_file", "options.tls.key_file", "private key does not match"}},
		{"cert not PEM", federated.TLSFiles{CertFile: notPEM, KeyFile: certs.clientKey}, []string{"options.tls.cert_file", notPEM}},
	}
	nodes := map[string]federated.Node{"a": {Address: "127.0.0.1:7000"}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := tt.files
			c, err := federated.New(federated.Config{Nodes: nodes, Options: federated.Options{TLS: &files}})
			require.ErrorIs(t, err, federated.ErrInvalidConfig)
			require.Nil(t, c)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}

			doc := fmt.Sprintf("nodes:\n  a: {address: \"127.0.0.1:7000\"}\noptions:\n  tls: {ca_file: %q, cert_file: %q, key_file: %q}\n",
				files.CAFile, files.CertFile, files.KeyFile)
			_, err = federated.ParseConfig([]byte(doc))
			require.ErrorIs(t, err, federated.ErrInvalidConfig, "ParseConfig checks the files as New does")
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
	_, err := federated.ParseConfig([]byte("nodes:\n  a: {address: \"h:1\"}\noptions:\n  tls: {ca_fil: x}\n"))
	require.ErrorIs(t, err, federated.ErrInvalidConfig)
	assert.Contains(t, err.Error(), "ca_fil")
}

func TestSecurityDuplicateServerSpellings(t *testing.T) {
	tests := []struct {
		name  string
		nodes map[string]federated.Node
		want  []string
	}{
		{"leading zero", map[string]federated.Node{"a": {Address: "127.0.0.1:6379"}, "b": {Address: "127.0.0.1:06379"}},
			[]string{"nodes.b.address", "already in node a", "(as 127.0.0.1:6379)"}},
		{"host case", map[string]federated.Node{"a": {Addresses: []string{"DB1:6379", "db1:6379"}}},
			[]string{"nodes.a.addresses[1]", "listed twice", "(as DB1:6379)"}},
		{"IPv4-mapped IPv6", map[string]federated.Node{"a": {Address: "127.0.0.1:6379"}, "b": {Address: "[::ffff:127.0.0.1]:6379"}},
			[]string{"nodes.b.address", "already in node a"}},
		{"IPv6 spellings", map[string]federated.Node{"a": {Address: "[::1]:6379"}, "b": {Address: "[0:0:0:0:0:0:0:1]:6379"}},
			[]string{"nodes.b.address", "already in node a"}},
		{"signed port", map[string]federated.Node{"a": {Address: "127.0.0.1:+6379"}},
			[]string{"nodes.a.address", `port "+6379"`}},
		// Loopback names are one host, whichever a file uses.
		{"localhost and 127.0.0.1", map[string]federated.Node{"a": {Address: "127.0.0.1:6379"}, "b": {Address: "localhost:6379"}},
			[]string{"nodes.b.address: server localhost:6379 is already in node a (as 127.0.0.1:6379)"}},
		{"localhost and ::1", map[string]federated.Node{"a": {Address: "[::1]:6379"}, "b": {Address: "LocalHost.:6379"}},
			[]string{"nodes.b.address: server LocalHost.:6379 is already in node a (as [::1]:6379)"}},
		{"127.0.0.1 and ::1 in a group", map[string]federated.Node{"a": {Addresses: []string{"127.0.0.1:6379", "[::1]:6379"}}},
			[]string{"nodes.a.addresses[1]: server [::1]:6379 is listed twice in node a (as 127.0.0.1:6379)"}},
		{"a trailing dot", map[string]federated.Node{"a": {Address: "db1.example:6379"}, "b": {Address: "db1.example.:6379"}},
			[]string{"nodes.b.address", "already in node a (as db1.example:6379)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := federated.New(federated.Config{Nodes: tt.nodes})
			require.ErrorIs(t, err, federated.ErrInvalidConfig)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
	c := newClient(t, federated.Config{Nodes: map[string]federated.Node{"a": {Address: "127.0.0.1:6379"}}, Options: testOptions()})
	err := c.AddNode("b", federated.Node{Address: "127.0.0.1:006379"})
	require.ErrorIs(t, err, federated.ErrInvalidConfig)
	assert.Contains(t, err.Error(), "already in node a")
	err = c.AddNode("b", federated.Node{Address: "localhost:6379"})
	require.ErrorIs(t, err, federated.ErrInvalidConfig)
	assert.Contains(t, err.Error(), "server localhost:6379 is already in node a (as 127.0.0.1:6379)")

	// Distinct servers: other loopback addresses, and names not resolved.
	for _, nodes := range []map[string]federated.Node{
		{"a": {Address: "127.0.0.1:6379"}, "b": {Address: "127.0.0.2:6379"}},
		{"a": {Address: "db1:6379"}, "b": {Address: "10.0.0.1:6379"}},
	} {
		require.NoError(t, federated.Config{Nodes: nodes}.Validate())
	}
}
