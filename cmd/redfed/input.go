package main

import (
	"context"
	"io"
)

// inputChunk is how much an interruptible reader reads at a time.
const inputChunk = 32 << 10

// interruptible returns a reader of in whose Read returns ctx's error once
// ctx ends, also while in is blocked (a terminal or a pipe that sends
// nothing), so that the first Ctrl-C stops a command reading standard
// input. It reads in in a goroutine of its own; stop ends that goroutine
// once the Read under way returns (for a blocked standard input, at the
// process's exit), and must be called when the reader is no longer read.
func interruptible(ctx context.Context, in io.Reader) (r io.Reader, stop func()) {
	ir := &interruptibleReader{ctx: ctx, chunks: make(chan inputResult), done: make(chan struct{})}
	go ir.pump(in)
	return ir, func() { close(ir.done) }
}

// inputResult is what one Read of the underlying reader returned.
type inputResult struct {
	data []byte
	err  error
}

type interruptibleReader struct {
	ctx    context.Context
	chunks chan inputResult
	done   chan struct{}
	rest   []byte // read and not yet returned
	err    error  // the underlying reader's error, once rest is returned
}

// pump reads in until its end or error, or until the reader is stopped.
func (r *interruptibleReader) pump(in io.Reader) {
	for {
		buf := make([]byte, inputChunk)
		n, err := in.Read(buf)
		select {
		case r.chunks <- inputResult{buf[:n], err}:
		case <-r.done:
			return
		}
		if err != nil {
			return
		}
	}
}

func (r *interruptibleReader) Read(p []byte) (int, error) {
	for len(r.rest) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if err := r.ctx.Err(); err != nil {
			return 0, err
		}
		select {
		case res := <-r.chunks:
			r.rest, r.err = res.data, res.err
		case <-r.ctx.Done():
			return 0, r.ctx.Err()
		}
	}
	n := copy(p, r.rest)
	r.rest = r.rest[n:]
	return n, nil
}
