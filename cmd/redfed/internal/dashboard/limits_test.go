package dashboard

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redfed/federated/metrics"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A long range of a busy series comes back as a chart's worth of points,
// not as every point: the reply is small whatever the range.
func TestSeriesRepliesAreBounded(t *testing.T) {
	f := newFixture(t, 1)
	srv := serve(t, Options{Source: f.fleet()})
	const n = 50_000
	start := f.writeSecondly(t, "big.sfo", "req.rate", n)
	series := fmt.Sprintf("/api/series?host=big.sfo&metric=req.rate&from=%d&to=%d", start.Unix(), start.Unix()+n)

	res, body := get(t, srv, series)
	require.Equal(t, http.StatusOK, res.StatusCode, body)
	assert.Less(t, len(body), 64<<10, "bytes of the reply without max_points")
	var got seriesReply
	getJSON(t, srv, series, http.StatusOK, &got)
	assert.Equal(t, n, got.DownsampledFrom)
	assert.LessOrEqual(t, len(got.Points), DefaultMaxPoints)
	assert.Greater(t, len(got.Points), DefaultMaxPoints/2)

	getJSON(t, srv, series+"&max_points=10000", http.StatusOK, &got)
	assert.Equal(t, n, got.DownsampledFrom)
	assert.LessOrEqual(t, len(got.Points), MaxPoints)
	assert.Greater(t, len(got.Points), MaxPoints/2)
	_, body = get(t, srv, series+"&max_points=10000")
	assert.Less(t, len(body), 750_000, "bytes of the reply of MaxPoints points")
}

// An overview's series share MaxPoints: 12 series of 10,000 points made a
// reply of 8 MB.
func TestOverviewRepliesAreBounded(t *testing.T) {
	f := newFixture(t, 1)
	srv := serve(t, Options{Source: f.fleet()})
	const n = 12_000
	q := url.Values{"metric": {"req.rate"}, "max_points": {"10000"}}
	for i := range MaxOverviewTop {
		host := fmt.Sprintf("big%d.sfo", i)
		start := f.writeSecondly(t, host, "req.rate", n)
		q.Add("host", host)
		q.Set("from", strconv.FormatInt(start.Unix(), 10))
		q.Set("to", strconv.FormatInt(start.Unix()+n, 10))
	}
	res, body := get(t, srv, "/api/overview?"+q.Encode())
	require.Equal(t, http.StatusOK, res.StatusCode, "%.300s", body)
	var got overviewReply
	require.NoError(t, json.Unmarshal([]byte(body), &got))
	require.Len(t, got.Series, MaxOverviewTop)
	total := 0
	for _, s := range got.Series {
		assert.Equal(t, n, s.DownsampledFrom, s.Host)
		assert.Greater(t, len(s.Points), MaxPoints/MaxOverviewTop/2, "points of %s", s.Host)
		total += len(s.Points)
	}
	assert.LessOrEqual(t, total, MaxPoints, "points of the overview")
	assert.Less(t, len(body), 750_000, "bytes of the reply")
}

// writeSecondly writes n points of host's metric a second apart straight
// into the key of a whole UTC day before the fixture's base, much faster
// than a Recorder, and returns the time of the first.
func (f *fixture) writeSecondly(t *testing.T, host, metric string, n int) time.Time {
	t.Helper()
	start := f.base.Add(-24 * time.Hour).Truncate(24 * time.Hour) // a whole UTC day, in one key
	key, err := f.client.MetricKey(start, host, metric)
	require.NoError(t, err)
	rc := redis.NewClient(&redis.Options{Addr: f.servers[0].Addr(), Password: testPassword, DisableIdentity: true})
	defer rc.Close()
	for first := 0; first < n; first += 1000 {
		zs := make([]redis.Z, 0, 1000)
		for i := first; i < min(first+1000, n); i++ {
			ts := start.Unix() + int64(i)
			zs = append(zs, redis.Z{Score: float64(ts), Member: fmt.Sprintf("%d:%d", ts, i%100)})
		}
		require.NoError(t, rc.ZAdd(context.Background(), key, zs...).Err())
	}
	return start
}

// gatedSource is a Source whose series reads wait for the test to let
// them end, and that counts how many run at once.
type gatedSource struct {
	fakeSource
	release           chan struct{}
	inFlight, started atomic.Int64
	most              atomic.Int64
}

func (s *gatedSource) Summarize(ctx context.Context, _ metrics.Series, _, _ time.Time, _ int) (metrics.Summary, error) {
	s.started.Add(1)
	n := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	for m := s.most.Load(); n > m && !s.most.CompareAndSwap(m, n); m = s.most.Load() {
	}
	select {
	case <-s.release:
	case <-ctx.Done():
		return metrics.Summary{}, ctx.Err()
	}
	return metrics.Summary{Points: []metrics.Point{{Time: time.Unix(1, 0), Value: 1}}, Total: 1}, nil
}

// Series reads take turns: no more than MaxSeriesReads run at once, and
// the others wait for theirs rather than fail.
func TestSeriesReadsTakeTurns(t *testing.T) {
	_, err := New(Options{Source: &fakeSource{}, MaxSeriesReads: -1})
	assert.ErrorContains(t, err, "Options.MaxSeriesReads -1: want 0 (the default, 4) or more")
	src := &gatedSource{release: make(chan struct{})}
	h, err := New(Options{Source: src, MaxSeriesReads: 2})
	require.NoError(t, err)
	var arrived atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived.Add(1)
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()

	const requests = 6
	codes := make(chan int, requests)
	var wg sync.WaitGroup
	for i := range requests {
		wg.Go(func() {
			res, err := srv.Client().Get(fmt.Sprintf("%s/api/series?host=web%d&metric=cpu", srv.URL, i))
			if err != nil {
				codes <- 0
				return
			}
			_ = res.Body.Close()
			codes <- res.StatusCode
		})
	}
	require.Eventually(t, func() bool { return arrived.Load() == requests && src.started.Load() == 2 },
		10*time.Second, 5*time.Millisecond, "every request arrived, and two reads started")
	close(src.release)
	wg.Wait()
	close(codes)
	for code := range codes {
		assert.Equal(t, http.StatusOK, code)
	}
	assert.Equal(t, int64(requests), src.started.Load(), "every read ran in its turn")
	assert.Equal(t, int64(2), src.most.Load(), "reads at once")
}

// A read that runs out of time fails the chart, not the server: it is not
// marked down, and writers go on using it.
func TestSeriesReadTimeoutLeavesServerUp(t *testing.T) {
	f := newFixture(t, 1)
	srv := serve(t, Options{Source: f.fleet()})
	addr := f.servers[0].Addr()
	require.NoError(t, f.servers[0].Pause())
	var got errorReply
	getJSON(t, srv, "/api/series?host=web1.sfo&metric=cpu.user", http.StatusBadGateway, &got)
	assert.Contains(t, got.Error, addr, "the error names the server")
	assert.True(t, strings.Contains(got.Error, "timeout"), "a timeout: %s", got.Error)
	assert.False(t, f.client.IsServerDown(addr), "the read marked the server down")
	require.NoError(t, f.servers[0].Resume())
	require.NoError(t, f.client.Record(context.Background(), "web1.sfo", "cpu.user", time.Now(), 1))
}

// A request that promises a body and never sends it is answered at once,
// on a connection that then closes: Go's server waits for the body of a
// reply that did not read it, and 200 such requests held 200 connections
// for as long as their clients liked, without a token or an allowed Host.
func TestUnsentBodyIsCutOff(t *testing.T) {
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(w, r.Body)
	})
	srv := serve(t, Options{Source: &fakeSource{hosts: []string{"web1"}}, Routes: map[string]http.Handler{"POST /api/v1/echo": echo}})
	withToken := serve(t, Options{Source: &fakeSource{}, Token: "s3cret-T0ken-0123", Routes: map[string]http.Handler{"POST /api/v1/echo": echo}})
	tests := []struct {
		name    string
		srv     *httptest.Server
		request string
		want    int
	}{
		{"GET", srv, "GET /api/hosts HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1\r\n\r\n", http.StatusBadRequest},
		{"GET of a page", srv, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1\r\n\r\n", http.StatusBadRequest},
		{"another Host", srv, "GET /api/hosts HTTP/1.1\r\nHost: evil.com\r\nContent-Length: 1\r\n\r\n", http.StatusBadRequest},
		{"chunked", srv, "GET /api/hosts HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n", http.StatusBadRequest},
		{"POST", srv, "POST /api/hosts HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1\r\n\r\n", http.StatusMethodNotAllowed},
		{"route, another Host", srv, "POST /api/v1/echo HTTP/1.1\r\nHost: evil.com\r\nContent-Length: 1\r\n\r\n", http.StatusMisdirectedRequest},
		{"route, no token", withToken, "POST /api/v1/echo HTTP/1.1\r\nHost: evil.com\r\nContent-Length: 1\r\n\r\n", http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", tt.srv.Listener.Addr().String())
			require.NoError(t, err)
			defer conn.Close()
			require.NoError(t, conn.SetDeadline(time.Now().Add(5*time.Second)))
			start := time.Now()
			_, err = io.WriteString(conn, tt.request)
			require.NoError(t, err)
			reply, err := io.ReadAll(conn) // until the server closes the connection
			require.NoError(t, err, "no reply, or the connection stayed open; got %q", reply)
			assert.Less(t, time.Since(start), 2*time.Second)
			res, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(reply)), nil)
			require.NoError(t, err, "reply %q", reply)
			_ = res.Body.Close()
			assert.Equal(t, tt.want, res.StatusCode, "reply %q", reply)
		})
	}

	// A route of Options.Routes still takes its body.
	res, err := srv.Client().Post(srv.URL+"/api/v1/echo", "text/plain", strings.NewReader("samples"))
	require.NoError(t, err)
	body, err := io.ReadAll(res.Body)
	_ = res.Body.Close()
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "samples", string(body))
}
