package redfedotel_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/fedtest"
	"github.com/redfed/federated/internal/redistest"
	"github.com/redfed/federated/metrics"
)

// largestAttribute records the spans of a Recorder's flush of 10,000
// points, traced with opts, and returns the length of the largest
// attribute value.
func largestAttribute(t *testing.T, opts ...redisotel.TracingOption) int {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	cfg := federated.Config{Nodes: fedtest.SingleNodes(redistest.StartN(t, 1)), Options: fedtest.Options()}
	cfg.Options.OnNewClient = func(_ string, rc *redis.Client) {
		require.NoError(t, redisotel.InstrumentTracing(rc, append(opts, redisotel.WithTracerProvider(tp))...))
	}
	c := fedtest.NewClient(t, cfg)
	r := fedtest.NewRecorder(t, c, metrics.RecorderOptions{FlushInterval: time.Hour})
	at := time.Now().Add(-time.Hour)
	for i := range 10_000 {
		require.NoError(t, r.Add(context.Background(), "web1.example.com", "cpu.user", at.Add(time.Duration(i)*time.Millisecond), float64(i)))
	}
	require.NoError(t, r.Flush(context.Background()))
	most := 0
	for _, s := range rec.Ended() {
		for _, a := range s.Attributes() {
			most = max(most, len(a.Value.Emit()))
		}
	}
	return most
}

// redisotel writes each command whole, every argument, into its span's
// db.statement unless told not to: a Recorder's flush of 10,000 points
// makes a span of hundreds of kilobytes, and a key of a megabyte an
// attribute of one. The configuration the docs give, WithDBStatement
// false, keeps every attribute small.
func TestTracingWithoutStatementsKeepsSpansSmall(t *testing.T) {
	assert.Greater(t, largestAttribute(t), 200_000, "the default: every point of the script call")
	assert.Less(t, largestAttribute(t, redisotel.WithDBStatement(false)), 200)
}
