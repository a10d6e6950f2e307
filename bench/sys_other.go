//go:build !linux

package main

import (
	"os/exec"
	"syscall"
	"time"
)

// sysProcAttr is the default elsewhere: servers stop with the benchmark's
// own clean-up, including on Ctrl-C.
func sysProcAttr() *syscall.SysProcAttr { return nil }

// startProcess starts cmd.
func startProcess(cmd *exec.Cmd) error { return cmd.Start() }

// processCPU is not measured elsewhere: the syncer's CPU figures count the
// servers only.
func processCPU() time.Duration { return 0 }
