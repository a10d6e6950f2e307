package main

import (
	"os/exec"
	"syscall"
	"time"
)

// sysProcAttr puts redis-server in its own process group, so that a Ctrl-C
// in the terminal reaches only the benchmark, which then stops its servers
// itself, and asks the kernel to kill it if the benchmark dies first.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// startProcess starts cmd from a fresh goroutine. PR_SET_PDEATHSIG fires
// when the forking thread exits (go.dev/issue/27505); a fresh goroutine is
// never locked to its thread, so it forks from a pool thread that lives as
// long as the process.
func startProcess(cmd *exec.Cmd) error {
	done := make(chan error, 1)
	go func() { done <- cmd.Start() }()
	return <-done
}

// processCPU returns the user and system CPU time this process used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
