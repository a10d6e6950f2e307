package metrics

import "errors"

// ownedKey is a series in a generation: where points of a Write went.
type ownedKey struct {
	g *generation
	s *series
}

// owned counts a Write's points of one series in one generation.
type owned struct {
	ownedKey
	points int
}

// WriteError is the error of a Recorder.Write some of whose points were
// not written: how many, and why. The Write's other points were written.
// errors.Is and errors.As see each of its failures.
type WriteError struct {
	Points   int            // the points of the Write
	Failed   int            // those of them not written: the sum of the Failures' Points
	Failures []WriteFailure // by series and period, in the order the Write gave them
}

// WriteFailure is why some of a Write's points were not written: those of
// one series of one period, or those left out when the buffer was full or
// the Recorder closed.
type WriteFailure struct {
	// Err is, or wraps, a *federated.ServerError naming the node and the
	// server, for a series whose write failed; it is ErrBufferFull,
	// federated.ErrClosed or the context's error for points that were not
	// added.
	Err error
	// Points is how many of the Write's points it covers.
	Points int
	// Period is the period of the series' key as the key names it
	// ("2026-11-25"), or "" for points that were not added.
	Period string
}

// add returns e, or a new WriteError of a Write of points points, with f
// added.
func (e *WriteError) add(points int, f WriteFailure) *WriteError {
	if e == nil {
		e = &WriteError{Points: points}
	}
	e.Failed += f.Points
	e.Failures = append(e.Failures, f)
	return e
}

// Error returns the failures' messages, one a line.
func (e *WriteError) Error() string { return errors.Join(e.Unwrap()...).Error() }

// Unwrap returns the failures' errors.
func (e *WriteError) Unwrap() []error {
	errs := make([]error, len(e.Failures))
	for i, f := range e.Failures {
		errs[i] = f.Err
	}
	return errs
}
