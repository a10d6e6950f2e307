package redistest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	// DefaultBinary is the redis-server executable looked up on PATH when
	// Options.Binary is empty.
	DefaultBinary = "redis-server"

	// DefaultStartTimeout bounds Start and Restart when
	// Options.StartTimeout is zero.
	DefaultStartTimeout = 10 * time.Second

	// stopGrace is how long Stop waits after SIGTERM before SIGKILL. Redis
	// without persistence exits in milliseconds; it only lingers when it
	// waits for replicas to catch up (shutdown-timeout, 10s by default).
	stopGrace = 2 * time.Second

	// pauseTimeout bounds how long Pause waits for the kernel to report the
	// process as stopped.
	pauseTimeout = 2 * time.Second

	// startAttempts is how many fresh ports Start tries when redis-server
	// reports that its port is already in use.
	startAttempts = 5
)

var (
	// ErrNotInstalled reports that the redis-server binary was not found.
	ErrNotInstalled = errors.New(`redis-server not found on PATH: install it with "sudo apt-get install -y redis-server" (Debian/Ubuntu)`)

	// ErrNotRunning reports a Pause or Resume of a server whose process is
	// not running (killed, or exited on its own).
	ErrNotRunning = errors.New("redistest: server is not running")

	// ErrStopped reports a call on a server after Stop.
	ErrStopped = errors.New("redistest: server is stopped")

	// errAddrInUse marks a start that failed because the port was taken.
	errAddrInUse = errors.New("address already in use")
)

// reservedArgs are the redis-server options Start sets itself; overriding
// them in Options.Args would break Addr, Kill or the start-failure report.
var reservedArgs = []string{"port", "tls-port", "bind", "dir", "logfile", "daemonize"}

// Options configures a server. Zero values mean the defaults.
type Options struct {
	// Args are extra redis-server arguments appended after the ones Start
	// sets, e.g. "--requirepass", "x" or "--maxmemory", "1mb". They may
	// override --loglevel, --save and the like, but not --port, --bind,
	// --dir, --logfile or --daemonize.
	Args []string

	// Dir is the working directory of the server, which holds its log.
	// Empty means a new temporary directory, removed by Stop. A directory
	// given here is created if missing and never removed.
	Dir string

	// Binary is the redis-server executable, a path or a name looked up on
	// PATH. Empty means DefaultBinary.
	Binary string

	// StartTimeout bounds Start and Restart, from launching the process to
	// the first answer to PING. Zero means DefaultStartTimeout.
	StartTimeout time.Duration

	// TLS, when set, makes the server speak TLS only, on the port that Addr
	// reports (--tls-port PORT --port 0); Start and Restart then wait for
	// an answer to PING over TLS. redis-server must be built with TLS.
	TLS *TLS
}

// TLS are the PEM files of a server that speaks TLS.
type TLS struct {
	// CertFile and KeyFile are the server's certificate and key. The
	// certificate must be valid for 127.0.0.1.
	CertFile, KeyFile string
	// CAFile holds the authority that signs client certificates, and the
	// server's own, which the readiness probe checks against it.
	CAFile string
	// AuthClients makes the server require a client certificate signed by
	// CAFile (--tls-auth-clients yes instead of no). The readiness probe
	// then presents CertFile and KeyFile, so the certificate must be valid
	// for client authentication too.
	AuthClients bool
}

// Server is a redis-server child process on 127.0.0.1. It is safe for
// concurrent use.
type Server struct {
	opts    Options // defaults filled in; never changes after Start
	binary  string  // resolved path of the executable
	dir     string  // absolute working directory
	ownsDir bool    // dir was created by Start and is removed by Stop
	port    int     // fixed once Start returns
	addr    string  // "127.0.0.1:port"

	mu          sync.Mutex
	reservation *portReservation // guarded by mu; holds port from Start to Stop
	cmd         *exec.Cmd        // guarded by mu; nil while no process is alive
	paused      bool             // guarded by mu; SIGSTOP sent, no SIGCONT since
	stopped     bool             // guarded by mu; Stop was called
}

// Start starts a redis-server on a free 127.0.0.1 port and returns once it
// answers PING. If the port is taken before redis-server binds it, Start
// tries again with another port. On error nothing is left running and a
// temporary directory is removed.
func Start(opts Options) (*Server, error) {
	s, err := newServer(opts)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()

	deadline := time.Now().Add(s.opts.StartTimeout)
	for attempt := 1; ; attempt++ {
		if s.reservation, err = reservePort(0); err != nil {
			break
		}
		s.port = s.reservation.port
		s.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
		if err = s.startLocked(deadline); err == nil {
			return s, nil
		}
		s.reservation.close()
		s.reservation = nil
		if !errors.Is(err, errAddrInUse) || attempt == startAttempts || time.Now().After(deadline) {
			break
		}
	}
	if s.ownsDir {
		_ = os.RemoveAll(s.dir)
	}
	return nil, err
}

// newServer fills the defaults of opts, validates them, resolves the binary
// and prepares the directory.
func newServer(opts Options) (*Server, error) {
	opts.Args = append([]string(nil), opts.Args...)
	if opts.TLS != nil {
		files := *opts.TLS
		opts.TLS = &files
		if files.CertFile == "" || files.KeyFile == "" || files.CAFile == "" {
			return nil, fmt.Errorf("redistest: Options.TLS needs CertFile, KeyFile and CAFile")
		}
	}
	if opts.Binary == "" {
		opts.Binary = DefaultBinary
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = DefaultStartTimeout
	}
	if opts.StartTimeout < 0 {
		return nil, fmt.Errorf("redistest: Options.StartTimeout is negative (%v)", opts.StartTimeout)
	}
	for _, arg := range opts.Args {
		for _, name := range reservedArgs {
			if strings.EqualFold(arg, "--"+name) {
				return nil, fmt.Errorf("redistest: Options.Args: %q is set by redistest and cannot be overridden", arg)
			}
		}
	}

	binary, err := exec.LookPath(opts.Binary)
	if err != nil {
		if opts.Binary == DefaultBinary {
			return nil, fmt.Errorf("redistest: %w", ErrNotInstalled)
		}
		return nil, fmt.Errorf("redistest: Options.Binary %q: %w (%w)", opts.Binary, err, ErrNotInstalled)
	}

	s := &Server{opts: opts, binary: binary}
	if opts.Dir == "" {
		if s.dir, err = os.MkdirTemp("", "redistest-"); err != nil {
			return nil, fmt.Errorf("redistest: create temporary directory: %w", err)
		}
		s.ownsDir = true
		return s, nil
	}
	if s.dir, err = filepath.Abs(opts.Dir); err != nil {
		return nil, fmt.Errorf("redistest: Options.Dir %q: %w", opts.Dir, err)
	}
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return nil, fmt.Errorf("redistest: Options.Dir %q: %w", opts.Dir, err)
	}
	return s, nil
}

// Addr returns the server's address, "127.0.0.1:PORT". It does not change
// across Kill and Restart.
func (s *Server) Addr() string { return s.addr }

// Port returns the server's TCP port.
func (s *Server) Port() int { return s.port }

// Dir returns the server's working directory, which holds its log.
func (s *Server) Dir() string { return s.dir }

// PID returns the process id of the running redis-server, or 0 when no
// process is running.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Running reports whether the redis-server process is alive. A paused
// server is running. A process that exited on its own is reaped here.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return false
	}
	if processExited(s.cmd.Process.Pid) {
		_ = s.reapLocked()
		return false
	}
	return true
}

// Kill sends SIGKILL and waits for the process to be reaped. The port stays
// reserved for Restart; connections to it are refused meanwhile. Killing a
// server that is not running does nothing.
func (s *Server) Kill() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return ErrStopped
	}
	return s.killLocked()
}

// Pause sends SIGSTOP and returns once the process is stopped. The kernel
// still completes TCP handshakes on the port (up to the listen backlog), so
// clients connect but never get an answer until Resume.
func (s *Server) Pause() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkRunningLocked(); err != nil {
		return err
	}
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		return fmt.Errorf("redistest: pause %s: %w", s.addr, err)
	}
	s.paused = true
	if err := waitStopped(s.cmd.Process.Pid, time.Now().Add(pauseTimeout)); err != nil {
		return fmt.Errorf("redistest: pause %s: %w", s.addr, err)
	}
	return nil
}

// Resume sends SIGCONT to a paused server; it answers again right away.
func (s *Server) Resume() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkRunningLocked(); err != nil {
		return err
	}
	if err := s.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		return fmt.Errorf("redistest: resume %s: %w", s.addr, err)
	}
	s.paused = false
	return nil
}

// Restart kills the server if it is running, then starts it again on the
// same port with the same options and waits for PING. The new server is
// empty: nothing is persisted.
func (s *Server) Restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return ErrStopped
	}
	if err := s.killLocked(); err != nil {
		return err
	}
	deadline := time.Now().Add(s.opts.StartTimeout)
	for {
		err := s.startLocked(deadline)
		if err == nil || !errors.Is(err, errAddrInUse) || time.Now().After(deadline) {
			return err
		}
		// Someone bound the port explicitly; give them a moment to let go.
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop shuts the server down: SIGCONT if paused, SIGTERM, SIGKILL after a
// short grace, then it reaps the process, releases the port and removes the
// temporary directory. Stop is idempotent; later calls return nil.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil
	}
	s.stopped = true

	var errs []error
	if s.cmd != nil {
		p := s.cmd.Process
		if s.paused {
			_ = p.Signal(syscall.SIGCONT)
		}
		_ = p.Signal(syscall.SIGTERM)
		if !waitExited(p.Pid, time.Now().Add(stopGrace)) {
			_ = p.Kill()
		}
		errs = append(errs, s.reapLocked())
	}
	s.reservation.close()
	s.reservation = nil
	if s.ownsDir {
		if err := os.RemoveAll(s.dir); err != nil {
			errs = append(errs, fmt.Errorf("redistest: remove %s: %w", s.dir, err))
		}
	}
	return errors.Join(errs...)
}

func (s *Server) checkRunningLocked() error {
	if s.stopped {
		return ErrStopped
	}
	if s.cmd == nil || processExited(s.cmd.Process.Pid) {
		return fmt.Errorf("%w: %s", ErrNotRunning, s.addr)
	}
	return nil
}

// killLocked sends SIGKILL, which also ends a stopped process, and reaps.
func (s *Server) killLocked() error {
	if s.cmd == nil {
		return nil
	}
	_ = s.cmd.Process.Kill()
	return s.reapLocked()
}

// reapLocked waits for a process that has exited or is about to. An exit
// status is not an error: the caller killed it or it exited on its own.
func (s *Server) reapLocked() error {
	err := s.cmd.Wait()
	s.cmd = nil
	s.paused = false
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		return fmt.Errorf("redistest: reap %s: %w", s.addr, err)
	}
	return nil
}
