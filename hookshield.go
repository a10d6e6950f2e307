package federated

import (
	"context"
	"errors"
	"slices"
	"sync"

	"github.com/redis/go-redis/v9"
)

// A user's hook (Options.Hooks, AddHook, AddServerHook) sits inside the
// health hook of its server's client, which takes what a command returns
// for the server's answer. An error the hook makes (io.EOF or a deadline
// of its own, a net.Error of a proxy it talks to) or a hook that kept a
// command past its deadline before sending it would then mark a healthy
// server down, and resend the command to the next server of its group
// though the first may have run it. Each user hook is added shielded: an
// error that did not come from the command's server is a *hookError,
// which fails the command and nothing else.

// hookError is the error of a command that one of the user's hooks made
// (it returned an error the server did not, or sent the command after its
// deadline had passed): it fails the command, does not mark the server
// down, and is never sent to another server for it. Unwrap returns the
// hook's error, which errors.Is and errors.As find.
type hookError struct{ err error }

func (e *hookError) Error() string { return e.err.Error() }
func (e *hookError) Unwrap() error { return e.err }

// faultLike reports an error that the client would take for its server's
// fault (a timeout, a connection error): the only ones a hook's are told
// from. Any other (redis.Nil, a reply, the caller's own) stays as it is,
// for a caller that compares it with ==.
func faultLike(err error) bool {
	return err != nil && !isHookError(err) && (isTimeout(err) || isConnError(err))
}

// isHookError reports whether err is, or wraps, a *hookError.
func isHookError(err error) bool {
	var he *hookError
	return errors.As(err, &he)
}

// shielded wraps a user's hook so that its errors are told from its
// server's (see hookError).
func shielded(h redis.Hook) redis.Hook { return &shieldedHook{h: h} }

// shieldedHook is a user's hook and what it did of the calls under way,
// by command (a pipeline's by its first): not by a value of the call's
// context, which a hook may drop when it sends the command on.
type shieldedHook struct {
	h     redis.Hook
	calls sync.Map // redis.Cmder to *hookCall
}

// hookCall is what a shielded hook saw of one call: whether the hook sent
// it on (next), once at least in time (its context not done by then), and
// what came back each time.
type hookCall struct {
	reached, inTime bool
	errs            []error // what next returned, each time
	cmdErrs         []error // a pipeline's commands' errors, each time, end to end
}

// serverSaid reports whether err, which the hook returned, is (or wraps)
// what the server returned on a try the hook sent in time.
func (c *hookCall) serverSaid(err error, said []error) bool {
	if !c.reached || !c.inTime {
		return false
	}
	return slices.ContainsFunc(said, func(e error) bool {
		// errors.Is, not ==: it compares only comparable errors, and
		// finds the server's error a hook wrapped.
		return e != nil && errors.Is(err, e)
	})
}

// note counts a try the hook sent on: late when its context was done by
// then.
func (c *hookCall) note(late bool, err error) {
	c.reached = true
	c.inTime = c.inTime || !late
	c.errs = append(c.errs, err)
}

func (s *shieldedHook) DialHook(next redis.DialHook) redis.DialHook { return s.h.DialHook(next) }

func (s *shieldedHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	inner := s.h.ProcessHook(func(ctx context.Context, cmd redis.Cmder) error {
		late := ctx.Err() != nil
		err := next(ctx, cmd)
		if v, ok := s.calls.Load(cmd); ok {
			v.(*hookCall).note(late, err)
		}
		return err
	})
	return func(ctx context.Context, cmd redis.Cmder) error {
		call := &hookCall{}
		s.calls.Store(cmd, call)
		err := inner(ctx, cmd)
		s.calls.Delete(cmd)
		if faultLike(err) && !call.serverSaid(err, call.errs) {
			err = &hookError{err: err}
			cmd.SetErr(err)
		}
		return err
	}
}

func (s *shieldedHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	inner := s.h.ProcessPipelineHook(func(ctx context.Context, cmds []redis.Cmder) error {
		late := ctx.Err() != nil
		err := next(ctx, cmds)
		if len(cmds) == 0 {
			return err
		}
		if v, ok := s.calls.Load(cmds[0]); ok {
			call := v.(*hookCall)
			call.note(late, err)
			for _, cmd := range cmds {
				call.cmdErrs = append(call.cmdErrs, cmd.Err())
			}
		}
		return err
	})
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) == 0 {
			return inner(ctx, cmds)
		}
		call := &hookCall{}
		s.calls.Store(cmds[0], call)
		err := inner(ctx, cmds)
		s.calls.Delete(cmds[0])
		for _, cmd := range cmds {
			if e := cmd.Err(); faultLike(e) && !call.serverSaid(e, call.cmdErrs) {
				cmd.SetErr(&hookError{err: e})
			}
		}
		if faultLike(err) && !call.serverSaid(err, append(call.errs, call.cmdErrs...)) {
			err = &hookError{err: err}
		}
		return err
	}
}
