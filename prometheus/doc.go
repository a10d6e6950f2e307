// Package redfedprom exports the state of redfed's client and syncer to
// Prometheus. It is a module of its own, so that a program that uses the
// redfed library without Prometheus does not get the Prometheus client in
// its module graph.
//
// NewClientCollector reports each server's health from the client's
// Status, and the latency and errors of what each server ran from a hook
// on its go-redis clients. NewSyncerCollector reads the syncer's Stats.
// Both read when Prometheus scrapes, hold no goroutine and are safe for
// concurrent use.
package redfedprom
