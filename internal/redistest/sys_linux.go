package redistest

import (
	"errors"
	"fmt"
	"os/exec"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// pollInterval is how often the wait helpers below look at the child.
const pollInterval = 5 * time.Millisecond

// sysProcAttr asks the kernel to SIGKILL redis-server when its parent dies,
// so servers do not outlive a test binary that crashed or was killed.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// startProcess starts cmd from a fresh goroutine and waits for it.
//
// PR_SET_PDEATHSIG fires when the thread that forked the child exits, not
// the process (go.dev/issue/27505). The Go runtime ends a thread only when a
// goroutine exits while locked to it with runtime.LockOSThread. The caller
// might be such a goroutine (a test that locked its thread), and then its
// servers would die with it. A fresh goroutine is never locked, so it forks
// from an ordinary thread of the pool, which lives as long as the process.
// Locking the thread around cmd.Start would add nothing: what matters is
// that the forking goroutine does not exit locked. The remaining hole is
// other code that later locks the same pool thread and exits without
// unlocking; the runtime then ends that thread and its servers get SIGKILL.
// Tests that do that are rare, and Running and the start errors make it
// visible.
func startProcess(cmd *exec.Cmd) error {
	done := make(chan error, 1)
	go func() { done <- cmd.Start() }()
	return <-done
}

// processExited reports whether the child pid has exited, without reaping
// it (WNOWAIT), so that cmd.Wait still collects it later. Go's own
// os.Process.Wait peeks the same way before it reaps.
func processExited(pid int) bool {
	return peek(pid, unix.WEXITED)
}

// waitExited polls until the child pid has exited or deadline passes.
func waitExited(pid int, deadline time.Time) bool {
	for !processExited(pid) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pollInterval)
	}
	return true
}

// waitStopped polls until the child pid is stopped by a signal. SIGSTOP is
// delivered asynchronously: kill(2) returns before the target stops.
func waitStopped(pid int, deadline time.Time) error {
	for !peek(pid, unix.WSTOPPED) {
		if processExited(pid) {
			return errors.New("process exited instead of stopping")
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("process not stopped after %v", pauseTimeout)
		}
		time.Sleep(pollInterval)
	}
	return nil
}

// peek reports whether the child pid is in one of the states in which (a
// subset of WEXITED and WSTOPPED), leaving it waitable. A child that is
// already reaped counts as exited.
func peek(pid int, which int) bool {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, which|unix.WNOHANG|unix.WNOWAIT, nil)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.ECHILD):
			return which&unix.WEXITED != 0
		case err != nil:
			return false
		}
		// With WNOHANG and nothing to report, Linux zeroes the siginfo.
		return info.Signo == int32(unix.SIGCHLD)
	}
}

// ProcessCPU returns the user and system CPU time the calling process has
// used so far, every thread of it together.
func ProcessCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("redistest: CPU time of this process: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}
