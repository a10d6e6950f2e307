package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
)

// inputChunk is how much an interruptible reader reads at a time.
const inputChunk = 32 << 10

// interruptible returns a reader of in whose Read returns ctx's error once
// ctx ends, also while in is blocked (a terminal, or a pipe that sends
// nothing), so that the first Ctrl-C stops a command reading standard
// input. What in delivers after ctx ended is dropped. It reads in in a
// goroutine of its own, through two buffers it reuses; stop, which may be
// called more than once, ends that goroutine once the Read of in under way
// returns (for a blocked standard input, at the process's exit). Call stop
// when the reader is no longer read.
func interruptible(ctx context.Context, in io.Reader) (r io.Reader, stop func()) {
	ir := &interruptibleReader{
		ctxDone: ctx.Done(),
		ctxErr:  ctx.Err,
		chunks:  make(chan inputChunkRead),
		free:    make(chan []byte, 2),
		stopped: make(chan struct{}),
	}
	ir.free <- make([]byte, inputChunk)
	ir.free <- make([]byte, inputChunk)
	go ir.pump(in)
	return ir, sync.OnceFunc(func() { close(ir.stopped) })
}

// inputChunkRead is what one Read of the underlying reader returned, in buf.
type inputChunkRead struct {
	buf []byte
	n   int
	err error
}

type interruptibleReader struct {
	ctxDone <-chan struct{}
	ctxErr  func() error
	chunks  chan inputChunkRead
	free    chan []byte // buffers pump may read into
	stopped chan struct{}

	held    []byte // the buffer rest is in, given back once rest is read
	rest    []byte // read and not yet returned
	readErr error  // the underlying reader's error, once rest is returned
}

// pump reads in until its end or error, or until the reader is stopped.
func (r *interruptibleReader) pump(in io.Reader) {
	for {
		var buf []byte
		select {
		case buf = <-r.free:
		case <-r.stopped:
			return
		}
		n, err := in.Read(buf)
		select {
		case r.chunks <- inputChunkRead{buf, n, err}:
		case <-r.stopped:
			return
		}
		if err != nil {
			return
		}
	}
}

func (r *interruptibleReader) Read(p []byte) (int, error) {
	for len(r.rest) == 0 {
		if r.held != nil {
			r.free <- r.held // never blocks: free holds every buffer
			r.held = nil
		}
		if r.readErr != nil {
			return 0, r.readErr
		}
		if err := r.ctxErr(); err != nil {
			return 0, err
		}
		select {
		case c := <-r.chunks:
			r.held, r.rest, r.readErr = c.buf, c.buf[:c.n], c.err
		case <-r.ctxDone:
			return 0, r.ctxErr()
		}
	}
	n := copy(p, r.rest)
	r.rest = r.rest[n:]
	return n, nil
}

// errLineTooLong reports a line longer than readLine's limit.
var errLineTooLong = errors.New("line too long")

// readLine returns the next line of r without its end of line ("\n" or
// "\r\n", or a last "\r" at the end of input), and io.EOF at the end of
// input. A last line with no end of line
// counts when the input ends there; when reading fails or is interrupted
// instead, it may have been cut, and is dropped: the error is returned. A
// line longer than limit bytes is read to its end and dropped, and
// errLineTooLong returned.
func readLine(r *bufio.Reader, limit int) (string, error) {
	frag, err := r.ReadSlice('\n')
	if err == nil && len(frag) <= limit+2 { // the common case, in one piece
		return checkedLine(frag, limit)
	}
	var line []byte
	tooLong := false
	for {
		if !tooLong {
			if len(line)+len(frag) > limit+2 { // room for "\r\n"
				tooLong, line = true, nil
			} else {
				line = append(line, frag...)
			}
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			frag, err = r.ReadSlice('\n')
			continue
		case err == nil, errors.Is(err, io.EOF) && (len(line) > 0 || tooLong):
		default:
			return "", err
		}
		if tooLong {
			return "", errLineTooLong
		}
		return checkedLine(line, limit)
	}
}

// checkedLine returns line without its end of line, or errLineTooLong.
func checkedLine(line []byte, limit int) (string, error) {
	line, _ = bytes.CutSuffix(line, []byte("\n"))
	line, _ = bytes.CutSuffix(line, []byte("\r"))
	if len(line) > limit {
		return "", errLineTooLong
	}
	return string(line), nil
}
