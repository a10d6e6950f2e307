// Package redfedprom exports the state of redfed's syncer to Prometheus.
// It is a module of its own, so that a program that uses the redfed library
// without Prometheus does not get the Prometheus client in its module
// graph.
//
// A collector reads the syncer's Stats when Prometheus scrapes it; it
// holds no goroutine and is safe for concurrent use.
package redfedprom
