//go:build !linux

package redistest

import (
	"errors"
	"os/exec"
	"syscall"
	"time"
)

// Outside Linux there is no parent-death signal and no way to look at a
// child's state without reaping it, so servers may outlive a crashed test
// binary, a redis-server that dies on its own is noticed only by the start
// timeout, and Stop always waits the full grace before SIGKILL.

func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{} }

func startProcess(cmd *exec.Cmd) error { return cmd.Start() }

func processExited(int) bool { return false }

func waitExited(int, time.Time) bool { return false }

func waitStopped(int, time.Time) error { return nil }

// ProcessCPU is Linux only; elsewhere it is an error, as CPUTime is.
func ProcessCPU() (time.Duration, error) {
	return 0, errors.New("redistest: CPU time of this process: Linux only")
}
