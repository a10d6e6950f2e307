package remote

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/common/model"

	"github.com/redfed/federated/internal/ratelog"
)

// Defaults of Options.
const (
	// DefaultMaxBodyBytes bounds a request body as sent. Prometheus sends
	// at most a few thousand samples a request (max_samples_per_send),
	// some tens of kilobytes.
	DefaultMaxBodyBytes = 16 << 20
	// DefaultMaxDecodedBytes bounds a request body once decompressed and
	// decoded.
	DefaultMaxDecodedBytes = 64 << 20
	// DefaultMaxSamples bounds the samples one read answers with, all its
	// queries together: about 16 bytes each in the reply, and a few times
	// that while it is built.
	DefaultMaxSamples = 5_000_000
	// DefaultMaxRange is how long a range a query reads (see
	// Options.MaxRange).
	DefaultMaxRange = 366 * 24 * time.Hour
	// DefaultBodyTimeout bounds the reading of a request body and the
	// sending of a read's reply: twice Prometheus's default
	// remote_timeout, after which it has given up.
	DefaultBodyTimeout = time.Minute
	// DefaultMaxRequests is how many requests a handler serves at once.
	// Prometheus sends a shard's requests one after another, and a store
	// that answers in milliseconds keeps it to a few shards.
	DefaultMaxRequests = 16
)

// listSlack is how long before a query's start the listing of hosts and
// metrics looks for changed keys: a key holding a sample at time t was
// changed at t or later by the servers' clocks, unless its writer's clock
// runs ahead of them.
const listSlack = time.Hour

// maxAhead is how far past this host's present a written sample may be
// stamped: a read lists the series changed since listSlack before its
// start by the servers' clocks, so that a sample farther ahead would not
// be found by a query near its time. Ten minutes of the slack are for the
// clocks of this host and of the servers to differ.
const maxAhead = listSlack - 10*time.Minute

// aheadSlack is how far past the present the MaxRange of a query too wide
// reaches (see Options.MaxRange), for writers whose clocks run ahead.
const aheadSlack = time.Hour

// Options configure the handlers. Zero values mean the defaults.
type Options struct {
	// HostLabel is the label whose value is a series' host. Default
	// DefaultHostLabel, "instance". It may not be __name__.
	HostLabel string
	// MaxBodyBytes bounds a request body as sent; a bigger one gets 413.
	// Default DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// MaxDecodedBytes bounds a request body once decompressed, and the
	// memory its message takes once decoded, which for many small
	// elements is many times its size; a bigger one gets 413. Default
	// DefaultMaxDecodedBytes.
	MaxDecodedBytes int
	// MaxSamples bounds the samples of one read, all its queries together;
	// a read that finds more gets 400 and a message that says so. Default
	// DefaultMaxSamples.
	MaxSamples int
	// MaxRange bounds the range a query reads: of a wider one, the
	// MaxRange nearest the present: up to its end or an hour past the
	// present, the earlier (for writers whose clocks run ahead), or for a
	// range that starts later than that, the MaxRange from its start.
	// Prometheus asks for ranges from the year −292 million to +292
	// million when a series listing gives neither start nor end: it gets
	// the series of the last MaxRange. Default DefaultMaxRange.
	MaxRange time.Duration
	// BodyTimeout bounds how long a request's body may take to arrive; a
	// slower one gets 408. It holds whatever the http.Server's own
	// timeouts, so that a sender that trickles its body a byte at a time
	// does not hold a goroutine and a growing buffer for ever. It bounds
	// the selection of a read's series too, all its queries' from the
	// first one's start (a read whose matchers take longer gets 503),
	// and the sending of its reply: a reader that stops reading has its
	// connection cut, and gives its turn up. Default DefaultBodyTimeout.
	BodyTimeout time.Duration
	// MaxRequests is how many requests a handler serves at once; the
	// others wait for their turn before their body is read, so that the
	// memory of the requests in hand stays under MaxRequests times
	// MaxBodyBytes plus MaxDecodedBytes twice (decompressed, then
	// decoded). A request holds its turn while its body arrives, so that
	// MaxRequests senders that trickle theirs keep the others waiting up
	// to BodyTimeout (behind redfed serve, only senders that hold its
	// token can). Default DefaultMaxRequests.
	MaxRequests int
	// Logger receives a warning for a request that fails, and one for
	// samples of dropped periods skipped, each naming the sender, each
	// kind one every 10 seconds at most with the number left out before
	// it. Default slog.Default().
	Logger *slog.Logger
}

// withDefaults validates the options and fills in the defaults.
func (o Options) withDefaults() (Options, error) {
	switch {
	case o.HostLabel == model.MetricNameLabel:
		return o, fmt.Errorf("remote: Options.HostLabel %q: the metric name cannot be the host", o.HostLabel)
	case o.HostLabel != "" && !model.UTF8Validation.IsValidLabelName(o.HostLabel):
		return o, fmt.Errorf("remote: Options.HostLabel %q is not a label name", o.HostLabel)
	case o.MaxBodyBytes < 0, o.MaxDecodedBytes < 0, o.MaxSamples < 0, o.MaxRange < 0, o.BodyTimeout < 0, o.MaxRequests < 0:
		return o, errors.New("remote: Options.MaxBodyBytes, MaxDecodedBytes, MaxSamples, MaxRange, BodyTimeout and MaxRequests may not be negative; zero means the default")
	}
	if o.HostLabel == "" {
		o.HostLabel = DefaultHostLabel
	}
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.MaxDecodedBytes == 0 {
		o.MaxDecodedBytes = DefaultMaxDecodedBytes
	}
	if o.MaxSamples == 0 {
		o.MaxSamples = DefaultMaxSamples
	}
	if o.MaxRange == 0 {
		o.MaxRange = DefaultMaxRange
	}
	if o.BodyTimeout == 0 {
		o.BodyTimeout = DefaultBodyTimeout
	}
	if o.MaxRequests == 0 {
		o.MaxRequests = DefaultMaxRequests
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o, nil
}

// turns lets at most a number of requests be served at once.
type turns chan struct{}

// take waits for a turn, and reports false when the request ended first
// (its sender went away).
func (t turns) take(r *http.Request) bool {
	select {
	case t <- struct{}{}:
		return true
	case <-r.Context().Done():
		return false
	}
}

// give hands a turn back.
func (t turns) give() { <-t }

// httpError is a reply other than success: its status and message.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func errorf(code int, format string, args ...any) *httpError {
	return &httpError{code: code, msg: fmt.Sprintf(format, args...)}
}

// readBody checks the method and the encoding of a request and returns its
// body, decompressed, within the options' bounds: a message named name, of
// shape s, checked to be well-formed and to take at most MaxDecodedBytes
// once decoded.
func readBody(w http.ResponseWriter, r *http.Request, opts Options, name string, s *shape) ([]byte, *httpError) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return nil, errorf(http.StatusMethodNotAllowed, "method %s: want POST", r.Method)
	}
	if enc := r.Header.Get("Content-Encoding"); enc != "" && !strings.EqualFold(enc, "snappy") {
		return nil, errorf(http.StatusUnsupportedMediaType, "Content-Encoding %q: want snappy", enc)
	}
	// A ResponseWriter that cannot set deadlines leaves the bound to its
	// server. The deadline stays once the body is read: the server sets
	// its own before it reads the next request.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(opts.BodyTimeout))
	compressed, err := io.ReadAll(http.MaxBytesReader(w, r.Body, opts.MaxBodyBytes))
	if err != nil {
		switch {
		case errors.As(err, new(*http.MaxBytesError)):
			return nil, errorf(http.StatusRequestEntityTooLarge, "body over the limit of %d bytes", opts.MaxBodyBytes)
		case errors.Is(err, os.ErrDeadlineExceeded):
			return nil, errorf(http.StatusRequestTimeout, "body not read within %v", opts.BodyTimeout)
		}
		return nil, errorf(http.StatusBadRequest, "read body: %v", err)
	}
	n, err := snappy.DecodedLen(compressed)
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "body is not snappy-compressed: %v", err)
	}
	if n > opts.MaxDecodedBytes {
		return nil, errorf(http.StatusRequestEntityTooLarge, "body decompresses to %d bytes, over the limit of %d", n, opts.MaxDecodedBytes)
	}
	body, err := snappy.Decode(nil, compressed)
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "body is not snappy-compressed: %v", err)
	}
	size, err := decodedSize(body, s)
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "decode %s: %v", name, err)
	}
	if size > opts.MaxDecodedBytes {
		return nil, errorf(http.StatusRequestEntityTooLarge, "%s of %d bytes takes about %d once decoded, over the limit of %d",
			name, len(body), size, opts.MaxDecodedBytes)
	}
	return body, nil
}

// logEvery is the shortest interval between two log lines of failed
// requests: while a server is down Prometheus sends each shard's request
// again every few hundred milliseconds.
const logEvery = 10 * time.Second

type failLog struct{ *ratelog.Log }

// fail writes the reply of an error, and logs it.
func (f *failLog) fail(w http.ResponseWriter, r *http.Request, e *httpError) {
	http.Error(w, e.msg, e.code)
	f.Warn("remote: request failed", "path", r.URL.Path, "peer", r.RemoteAddr, "status", e.code, "error", e.msg)
}

// summary returns the first of the errors that the store joined, and how
// many there are: one per series or server, which for a server down are
// all alike.
func summary(err error) string {
	var errs []error
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		errs = joined.Unwrap()
	}
	if len(errs) < 2 {
		return err.Error()
	}
	return fmt.Sprintf("%v (and %d more errors)", errs[0], len(errs)-1)
}
