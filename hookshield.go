package federated

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
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
// hook's error, which errors.Is and errors.As find. Its text says it is a
// hook's: "a hook's error: EOF" is not the server's EOF.
type hookError struct {
	err  error
	said bool // err's text says it is a hook's already
}

func (e *hookError) Error() string {
	if e.said {
		return e.err.Error()
	}
	return "a hook's error: " + e.err.Error()
}

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
// server's (see hookError), and so that its panics fail what it was
// given (see panicked).
func shielded(h redis.Hook, log *slog.Logger) redis.Hook { return &shieldedHook{h: h, log: log} }

// shieldedHook is a user's hook and what it did of the calls under way,
// by command (a pipeline's by its first): not by a value of the call's
// context, which a hook may drop when it sends the command on.
type shieldedHook struct {
	h     redis.Hook
	log   *slog.Logger
	calls sync.Map // redis.Cmder to *hookCall
}

// panicked makes the hookError of a hook that panicked with v, and logs
// it with the stack. A hook runs on the client's own goroutines too (a
// pipeline's share for each server, health checks, dials), where a panic
// would end the process, whatever the caller recovers, and leave Close
// waiting for a share that never ended: it fails the command, or every
// command of the pipeline, instead, as an error of the hook's does (the
// server is not marked down, nor the command sent to another server).
func (s *shieldedHook) panicked(v any) *hookError {
	s.log.Error("federated: a hook panicked", "panic", v, "stack", string(debug.Stack()))
	return &hookError{err: fmt.Errorf("federated: a hook panicked: %v", v), said: true}
}

// recoverCmds, deferred, turns a panic of the hook into the error of
// every command of cmds and the result *err.
func (s *shieldedHook) recoverCmds(err *error, cmds ...redis.Cmder) {
	v := recover()
	if v == nil {
		return
	}
	he := s.panicked(v)
	for _, cmd := range cmds {
		cmd.SetErr(he)
	}
	*err = he
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

// DialHook gives the hook each dial's own next, which keeps the
// connection dialed: a hook that panics after it has one would otherwise
// leave it open, a file descriptor each time.
func (s *shieldedHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (conn net.Conn, err error) {
		var dialed net.Conn
		inner := s.h.DialHook(func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := next(ctx, network, addr)
			dialed = c
			return c, err
		})
		defer func() {
			if v := recover(); v != nil {
				if dialed != nil {
					_ = dialed.Close()
				}
				conn, err = nil, s.panicked(v)
			}
		}()
		return inner(ctx, network, addr)
	}
}

func (s *shieldedHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	inner := s.h.ProcessHook(func(ctx context.Context, cmd redis.Cmder) error {
		late := ctx.Err() != nil
		err := next(ctx, cmd)
		if v, ok := s.calls.Load(cmd); ok {
			v.(*hookCall).note(late, err)
		}
		return err
	})
	return func(ctx context.Context, cmd redis.Cmder) (err error) {
		call := &hookCall{}
		s.calls.Store(cmd, call)
		defer s.calls.Delete(cmd)
		defer s.recoverCmds(&err, cmd)
		err = inner(ctx, cmd)
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
	return func(ctx context.Context, cmds []redis.Cmder) (err error) {
		defer s.recoverCmds(&err, cmds...)
		if len(cmds) == 0 {
			return inner(ctx, cmds)
		}
		call := &hookCall{}
		s.calls.Store(cmds[0], call)
		defer s.calls.Delete(cmds[0])
		err = inner(ctx, cmds)
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
