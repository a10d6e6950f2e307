package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/term"
)

// console is standard error as every command writes it: messages, the
// client's log and, on a terminal, one status line kept under them. Writes
// are serialized, so the goroutines of a command (a progress ticker, a
// recorder's error callback, the client's logger) can share it.
type console struct {
	mu     sync.Mutex // guards w and status
	w      io.Writer
	tty    bool   // status lines are drawn; false when w is not a terminal
	status string // the status line on screen, "" when none
}

// newConsole returns a console writing to w, which draws status lines only
// when w is a terminal.
func newConsole(w io.Writer) *console {
	return &console{w: w, tty: isTerminal(w)}
}

// isTerminal reports whether f is a file open on a terminal.
func isTerminal(f any) bool {
	file, ok := f.(*os.File)
	return ok && term.IsTerminal(int(file.Fd()))
}

// eraseLine returns the cursor to the start of the line and clears it.
const eraseLine = "\r\x1b[K"

// Write writes p, which should end a line, above the status line.
func (c *console) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.status == "" {
		return c.w.Write(p)
	}
	if _, err := io.WriteString(c.w, eraseLine); err != nil {
		return 0, err
	}
	n, err := c.w.Write(p)
	if err == nil {
		_, err = io.WriteString(c.w, c.status)
	}
	return n, err
}

// Printf writes a formatted message above the status line.
func (c *console) Printf(format string, args ...any) {
	fmt.Fprintf(c, format, args...)
}

// SetStatus replaces the status line. It does nothing unless the console is
// a terminal.
func (c *console) SetStatus(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.tty {
		return
	}
	c.status = s
	io.WriteString(c.w, eraseLine+s)
}

// ClearStatus removes the status line, if any.
func (c *console) ClearStatus() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.status != "" {
		io.WriteString(c.w, eraseLine)
		c.status = ""
	}
}

// consoleOf returns the console a command writes standard error to.
func consoleOf(w io.Writer) *console {
	if c, ok := w.(*console); ok {
		return c
	}
	return newConsole(w)
}

// progressInterval is how often a progress line is redrawn.
const progressInterval = 250 * time.Millisecond

// startProgress draws status(elapsed) on the console's status line every
// interval until the returned stop function is called; stop clears the line
// and waits for the drawing goroutine to end. On a console that is not a
// terminal nothing is started.
func startProgress(c *console, interval time.Duration, status func(elapsed time.Duration) string) (stop func()) {
	if !c.tty {
		return func() {}
	}
	start := time.Now()
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		ticker := time.NewTicker(interval)
		defer ticker.Stop()
		for {
			select {
			case <-quit:
				return
			case <-ticker.C:
				c.SetStatus(status(time.Since(start)))
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(quit)
			<-done
			c.ClearStatus()
		})
	}
}
