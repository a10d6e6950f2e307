package redistest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// CPUTime returns the CPU time the server's process has used so far, every
// thread of it together, to the nanosecond: the first field of
// /proc/PID/task/*/schedstat. It needs Linux; elsewhere, and for a server
// that is not running, it is an error.
func (s *Server) CPUTime() (time.Duration, error) {
	pid := s.PID()
	if pid == 0 {
		return 0, ErrNotRunning
	}
	files, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err != nil || len(files) == 0 {
		return 0, fmt.Errorf("redistest: CPU time of %s (pid %d): no /proc/%d/task/*/schedstat (Linux only)", s.addr, pid, pid)
	}
	var total time.Duration
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue // a thread that ended meanwhile
		}
		first, _, _ := strings.Cut(string(data), " ")
		ns, err := strconv.ParseInt(first, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("redistest: CPU time of %s: %s: %w", s.addr, f, err)
		}
		total += time.Duration(ns)
	}
	return total, nil
}

// CPUTime returns the CPU time the servers have used so far, summed.
func CPUTime(servers []*Server) (time.Duration, error) {
	var total time.Duration
	for _, s := range servers {
		d, err := s.CPUTime()
		if err != nil {
			return 0, err
		}
		total += d
	}
	return total, nil
}
