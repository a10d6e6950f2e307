package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	// startTimeout bounds one server's start, from exec to its first PONG.
	startTimeout = 10 * time.Second
	// stopGrace is how long a server gets to exit after SIGTERM.
	stopGrace = 2 * time.Second
	// startAttempts is how many free ports a server start tries: a port
	// found free can be taken by someone else before redis-server binds it.
	startAttempts = 5
)

// errNoRedis says how to get redis-server.
var errNoRedis = errors.New(`redis-server not found on PATH: install it with "apt-get install -y redis-server" (Debian/Ubuntu), or pass -addrs`)

// fleet is the set of servers the benchmark runs against: processes it
// started, or servers given with -addrs. admin clients, one per server in
// addrs order, do the flushing and checking.
type fleet struct {
	addrs []string
	admin []*redis.Client
	procs []*process // empty with -addrs
	dir   string     // working directory of the started servers
}

// process is one started redis-server.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has been reaped
}

// startFleet starts n redis-server processes on free loopback ports. On
// error, what it started is stopped again.
func startFleet(ctx context.Context, n int) (*fleet, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errNoRedis
	}
	dir, err := os.MkdirTemp("", "redfed-bench-")
	if err != nil {
		return nil, err
	}
	f := &fleet{dir: dir}
	for range n {
		p, addr, err := startServer(ctx, bin, dir)
		if err != nil {
			f.stop()
			return nil, err
		}
		f.procs = append(f.procs, p)
		f.addrs = append(f.addrs, addr)
		f.admin = append(f.admin, adminClient(addr))
	}
	return f, nil
}

// useFleet connects to servers the benchmark did not start. It refuses
// servers that hold keys unless force is set, since every run flushes them.
func useFleet(ctx context.Context, addrs []string, force bool) (*fleet, error) {
	f := &fleet{addrs: addrs}
	for _, addr := range addrs {
		f.admin = append(f.admin, adminClient(addr))
	}
	for i, c := range f.admin {
		n, err := c.DBSize(ctx).Result()
		if err != nil {
			f.stop()
			return nil, fmt.Errorf("-addrs: %s: %w", addrs[i], err)
		}
		if n > 0 && !force {
			f.stop()
			return nil, fmt.Errorf("-addrs: %s holds %d keys and the benchmark erases every server (FLUSHALL); pass -force to go ahead", addrs[i], n)
		}
	}
	return f, nil
}

func adminClient(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: addr, DisableIdentity: true, ReadTimeout: time.Minute, PoolSize: 2})
}

// startServer starts one redis-server without persistence on a free port
// and waits for its PONG.
func startServer(ctx context.Context, bin, dir string) (*process, string, error) {
	var last error
	for range startAttempts {
		port, err := freePort()
		if err != nil {
			return nil, "", err
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		logPath := filepath.Join(dir, fmt.Sprintf("redis-%d.log", port))
		cmd := exec.Command(bin,
			"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no",
			"--protected-mode", "no", "--daemonize", "no",
			"--dir", dir, "--logfile", logPath, "--loglevel", "warning")
		cmd.SysProcAttr = sysProcAttr()
		p := &process{cmd: cmd, exited: make(chan struct{})}
		if err := startProcess(cmd); err != nil {
			return nil, "", fmt.Errorf("starting %s: %w", bin, err)
		}
		go func() {
			_ = cmd.Wait()
			close(p.exited)
		}()
		if last = waitReady(ctx, p, addr); last == nil {
			return p, addr, nil
		}
		p.stop()
		if log, _ := os.ReadFile(logPath); len(log) > 0 {
			last = fmt.Errorf("%w; its log:\n%s", last, strings.TrimSpace(string(log)))
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, "", fmt.Errorf("starting redis-server: %w", last)
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitReady polls addr with PING until it answers, the process exits, the
// start timeout passes or ctx ends.
func waitReady(ctx context.Context, p *process, addr string) error {
	c := redis.NewClient(&redis.Options{Addr: addr, DisableIdentity: true, MaxRetries: -1,
		DialTimeout: 250 * time.Millisecond, ReadTimeout: 250 * time.Millisecond})
	defer c.Close()
	deadline := time.Now().Add(startTimeout)
	for interval := 2 * time.Millisecond; ; interval = min(2*interval, 50*time.Millisecond) {
		err := c.Ping(ctx).Err()
		if err == nil {
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("redis-server on %s exited before answering PING (%v)", addr, p.cmd.ProcessState)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis-server on %s gave no PONG in %v: %w", addr, startTimeout, err)
		}
	}
}

// stop ends the process: SIGTERM, then SIGKILL after stopGrace.
func (p *process) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(stopGrace):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// stop closes the admin clients and stops the started servers. It is
// idempotent.
func (f *fleet) stop() {
	for _, c := range f.admin {
		_ = c.Close()
	}
	f.admin = nil
	for _, p := range f.procs {
		p.stop()
	}
	f.procs = nil
	if f.dir != "" {
		_ = os.RemoveAll(f.dir)
		f.dir = ""
	}
}

// flushAll empties every server.
func (f *fleet) flushAll(ctx context.Context) error {
	for i, c := range f.admin {
		if err := c.FlushAll(ctx).Err(); err != nil {
			return fmt.Errorf("FLUSHALL on %s: %w", f.addrs[i], err)
		}
	}
	return nil
}

// dbSize returns the number of keys over every server.
func (f *fleet) dbSize(ctx context.Context) (int64, error) {
	var total int64
	for i, c := range f.admin {
		n, err := c.DBSize(ctx).Result()
		if err != nil {
			return 0, fmt.Errorf("DBSIZE on %s: %w", f.addrs[i], err)
		}
		total += n
	}
	return total, nil
}

// zcard returns the members of key, wherever a contender put it.
func (f *fleet) zcard(ctx context.Context, key string) (int64, error) {
	var total int64
	for i, c := range f.admin {
		n, err := c.ZCard(ctx, key).Result()
		if err != nil {
			return 0, fmt.Errorf("ZCARD %s on %s: %w", key, f.addrs[i], err)
		}
		total += n
	}
	return total, nil
}

// cpu returns the CPU time that the first n servers have used so far:
// used_cpu_sys plus used_cpu_user of INFO cpu, which count every thread of
// a server and are given to the microsecond.
func (f *fleet) cpu(ctx context.Context, n int) (time.Duration, error) {
	var total time.Duration
	for i, c := range f.admin[:n] {
		info, err := c.Info(ctx, "cpu").Result()
		if err != nil {
			return 0, fmt.Errorf("INFO cpu on %s: %w", f.addrs[i], err)
		}
		for line := range strings.SplitSeq(info, "\n") {
			k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
			if !ok || (k != "used_cpu_sys" && k != "used_cpu_user") {
				continue
			}
			sec, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0, fmt.Errorf("INFO cpu on %s: %s: %w", f.addrs[i], line, err)
			}
			total += time.Duration(sec * float64(time.Second))
		}
	}
	return total, nil
}

// version returns the redis_version of the first server.
func (f *fleet) version(ctx context.Context) (string, error) {
	info, err := f.admin[0].Info(ctx, "server").Result()
	if err != nil {
		return "", fmt.Errorf("INFO on %s: %w", f.addrs[0], err)
	}
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
			return v, nil
		}
	}
	return "unknown", nil
}
