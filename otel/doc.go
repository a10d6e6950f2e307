// Package redfedotel holds the tests that OpenTelemetry's go-redis
// instrumentation (github.com/redis/go-redis/extra/redisotel/v9) traces
// and measures what a federated client sends, across a server's failure
// and recovery. It is a module of its own, so that a program that uses the
// redfed library without OpenTelemetry does not get it in its module
// graph. It has no code of its own.
//
// redisotel.InstrumentTracing and redisotel.InstrumentMetrics take a
// redis.UniversalClient but accept only go-redis's own *redis.Client,
// *redis.ClusterClient and *redis.Ring: they instrument the clients of a
// cluster or a ring's nodes through those types' OnNewNode. Given a
// *federated.Client they return "redisotel: *federated.Client not
// supported" and add nothing. The federated counterpart of OnNewNode is
// Options.OnNewClient, called with the go-redis client of every server,
// including the fresh one a server gets each time it comes back up:
//
//	opts.OnNewClient = func(addr string, rc *redis.Client) {
//		if err := redisotel.InstrumentTracing(rc, redisotel.WithDBStatement(false)); err != nil {
//			otel.Handle(err)
//		}
//	}
//
// Without WithDBStatement(false), redisotel writes every command whole,
// each argument, into its span's db.statement attribute: a Recorder's
// script call of 10,000 points made a span of 289 KB, a key of 1 MiB an
// attribute of 1 MiB (2 MiB of hex when it is not text), and the values
// written, whatever they hold, go to the tracing backend. Keep it on only
// with span limits (sdktrace.WithSpanLimits) and data you may export.
package redfedotel
