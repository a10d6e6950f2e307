// Package ratelog writes warnings of a kind one per interval at most, and
// says in the next how many it left out: a listener's warnings about its
// senders, which a sender that keeps failing would otherwise make by the
// thousand.
package ratelog

import (
	"log/slog"
	"sync"
	"time"
)

// Log writes warnings at most once per interval. It is safe for
// concurrent use.
type Log struct {
	logger *slog.Logger
	every  time.Duration

	mu      sync.Mutex
	next    time.Time // guarded by mu: no warning before this time
	skipped int64     // guarded by mu: warnings left out since the last one
}

// New returns a Log that writes to logger once per every at most.
func New(logger *slog.Logger, every time.Duration) *Log {
	return &Log{logger: logger, every: every}
}

// Warn logs msg with args, unless a warning was written less than the
// interval ago; the next one written says, as not_logged, how many were
// left out.
func (l *Log) Warn(msg string, args ...any) {
	l.mu.Lock()
	now := time.Now()
	if now.Before(l.next) {
		l.skipped++
		l.mu.Unlock()
		return
	}
	skipped := l.skipped
	l.skipped, l.next = 0, now.Add(l.every)
	l.mu.Unlock()
	if skipped > 0 {
		args = append(args, "not_logged", skipped)
	}
	l.logger.Warn(msg, args...)
}
