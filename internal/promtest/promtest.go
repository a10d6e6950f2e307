// Package promtest starts real prometheus processes for tests, on free
// loopback ports with their storage in a temporary directory, and queries
// them through their HTTP API. It is for tests only; every helper takes a
// testing.TB and fails the test. A missing prometheus fails it too, with
// the command that installs it.
package promtest

import (
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startTimeout bounds the wait for a prometheus to be ready.
const startTimeout = 30 * time.Second

// Server is a prometheus process started by a test.
type Server struct {
	addr string // its web address, host:port
	log  string // the path of its output
}

// Start starts prometheus with the configuration that config returns for
// its own web address, and waits until it is ready. It is stopped when the
// test ends.
func Start(t testing.TB, config func(addr string) string) *Server {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatalf("prometheus is not installed (%v): install the Debian package with \"apt-get install -y prometheus\"; scripts/test does", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("promtest: free port: %v", err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(config(addr)), 0o600); err != nil {
		t.Fatalf("promtest: %v", err)
	}
	s := &Server{addr: addr, log: filepath.Join(dir, "prometheus.log")}
	out, err := os.Create(s.log)
	if err != nil {
		t.Fatalf("promtest: %v", err)
	}
	cmd := exec.Command(bin, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		_ = out.Close()
		t.Fatalf("promtest: start prometheus: %v", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		_ = out.Close()
		close(done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	deadline := time.Now().Add(startTimeout)
	for {
		res, err := http.Get("http://" + addr + "/-/ready")
		if err == nil {
			_ = res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return s
			}
		}
		select {
		case <-done:
			t.Fatalf("prometheus exited before it was ready:\n%s", s.Output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus at %s not ready after %v:\n%s", addr, startTimeout, s.Output())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Addr returns the server's web address, host:port: the instance label of
// what it scrapes of itself.
func (s *Server) Addr() string { return s.addr }

// Output returns what the server logged.
func (s *Server) Output() string {
	b, _ := os.ReadFile(s.log)
	return string(b)
}

// Series is the samples of one series, by time in milliseconds.
type Series map[int64]float64

// Key returns the key of the series with the labels ls in the maps that
// Query returns: its labels, sorted, in the text format.
func Key(ls map[string]string) string {
	names := make([]string, 0, len(ls))
	for n := range ls {
		names = append(names, n)
	}
	slices.Sort(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + "=" + strconv.Quote(ls[n])
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// Query runs a query through the HTTP API at path (/api/v1/query with a
// range selector, or /api/v1/query_range) and returns its matrix, by Key.
func (s *Server) Query(t testing.TB, path string, params url.Values) map[string]Series {
	t.Helper()
	res, err := http.Get("http://" + s.addr + path + "?" + params.Encode())
	if err != nil {
		t.Fatalf("promtest: %s: %v", path, err)
	}
	defer res.Body.Close()
	var reply struct {
		Status string
		Error  string
		Data   struct {
			ResultType string
			Result     []struct {
				Metric map[string]string
				Values [][2]any
			}
		}
	}
	if err := json.NewDecoder(res.Body).Decode(&reply); err != nil {
		t.Fatalf("promtest: %s: decode: %v", path, err)
	}
	if reply.Status != "success" || reply.Data.ResultType != "matrix" {
		t.Fatalf("promtest: %s %v: status %s, result %s: %s", path, params, reply.Status, reply.Data.ResultType, reply.Error)
	}
	out := make(map[string]Series, len(reply.Data.Result))
	for _, r := range reply.Data.Result {
		series := make(Series, len(r.Values))
		for _, v := range r.Values {
			ts, ok := v[0].(float64)
			text, isText := v[1].(string)
			value, err := strconv.ParseFloat(text, 64)
			if !ok || !isText || err != nil {
				t.Fatalf("promtest: %s: sample %v", path, v)
			}
			series[int64(math.Round(ts*1000))] = value
		}
		out[Key(r.Metric)] = series
	}
	return out
}

// Raw returns the samples the server holds of the series that selector
// selects, in the minute up to at.
func (s *Server) Raw(t testing.TB, selector string, at time.Time) map[string]Series {
	t.Helper()
	return s.Query(t, "/api/v1/query", url.Values{"query": {selector + "[1m]"}, "time": {APITime(at)}})
}

// APITime formats t as the HTTP API takes it, to the millisecond.
func APITime(t time.Time) string { return fmt.Sprintf("%.3f", float64(t.UnixMilli())/1000) }

// Missing lists the samples of want that got lacks or holds with another
// value, at most a few. NaN and ±Inf, which redfed does not store, are not
// looked for.
func Missing(want, got map[string]Series) []string {
	var out []string
	for series, samples := range want {
		for ts, v := range samples {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				continue
			}
			if g, ok := got[series][ts]; !ok || g != v {
				out = append(out, fmt.Sprintf("%s @%d = %v (got %v, %v)", series, ts, v, g, ok))
				if len(out) == 5 {
					return out
				}
			}
		}
	}
	return out
}

// EventuallyMissing polls got for a minute until it holds every sample of
// want (see Missing), and returns what it still lacks then.
func EventuallyMissing(t testing.TB, want map[string]Series, got func() map[string]Series) []string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		lacking := Missing(want, got())
		if len(lacking) == 0 || time.Now().After(deadline) {
			return lacking
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// authorization is the lines of a remote_write or remote_read entry that
// send token as a bearer token, or none when it is empty.
func authorization(token string) string {
	if token == "" {
		return ""
	}
	return fmt.Sprintf("    authorization:\n      credentials: %q\n", token)
}

// WriterConfig is the configuration of a prometheus that scrapes itself
// every second and writes what it scrapes to url with remote write,
// retrying quickly, with the bearer token when it is not empty.
func WriterConfig(url, token string) func(addr string) string {
	auth := authorization(token)
	return func(addr string) string {
		return fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: [%q]
remote_write:
  - url: %q
%s    remote_timeout: 10s
    queue_config:
      batch_send_deadline: 500ms
      min_backoff: 50ms
      max_backoff: 500ms
    metadata_config:
      send: false
`, addr, url, auth)
	}
}

// ReaderConfig is the configuration of a prometheus that scrapes nothing
// and reads everything from url with remote read, recent data too, with
// the bearer token when it is not empty.
func ReaderConfig(url, token string) func(addr string) string {
	return func(string) string {
		return fmt.Sprintf("remote_read:\n  - url: %q\n    read_recent: true\n%s", url, authorization(token))
	}
}
