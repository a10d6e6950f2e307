package redistest

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

const (
	// maxProbeTimeout bounds one PING round trip while waiting for a start.
	maxProbeTimeout = 250 * time.Millisecond

	// maxPollInterval caps the back-off between readiness probes.
	maxPollInterval = 50 * time.Millisecond

	// tailLines is how many lines of log and stdout a start error quotes.
	tailLines = 20
)

// startLocked launches redis-server on s.port and waits until it answers
// PING or deadline passes. On error the process has been killed and reaped,
// and the error quotes what redis-server logged during this attempt.
func (s *Server) startLocked(deadline time.Time) error {
	logPath := filepath.Join(s.dir, fmt.Sprintf("redis-%d.log", s.port))
	outPath := filepath.Join(s.dir, fmt.Sprintf("redis-%d.out", s.port))
	logStart, outStart := fileSize(logPath), fileSize(outPath)

	listen, probeTLS, err := s.listenArgs()
	if err != nil {
		return fmt.Errorf("redistest: start %s: %w", s.addr, err)
	}
	// Options that fail before the log file is open (a bad argument, say)
	// are printed on stdout/stderr, so keep those too.
	out, err := os.OpenFile(outPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("redistest: start %s: %w", s.addr, err)
	}
	args := append(listen,
		"--bind", "127.0.0.1",
		"--protected-mode", "no",
		"--daemonize", "no",
		"--save", "",
		"--appendonly", "no",
		"--dir", s.dir,
		"--logfile", logPath,
		"--loglevel", "warning",
	)
	args = append(args, s.opts.Args...)
	cmd := exec.Command(s.binary, args...)
	cmd.Dir = s.dir
	// An *os.File is handed to the child as is: no copying goroutine.
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = sysProcAttr()
	err = startProcess(cmd)
	_ = out.Close()
	if err != nil {
		return fmt.Errorf("redistest: start %s on %s: %w", s.binary, s.addr, err)
	}

	if err := waitReady(cmd, s.addr, probeTLS, deadline); err != nil {
		output := tail(logPath, logStart) + tail(outPath, outStart)
		if strings.Contains(output, "Address already in use") {
			err = fmt.Errorf("%w (%w)", err, errAddrInUse)
		}
		if output == "" {
			output = "(no output)\n"
		}
		return fmt.Errorf("redistest: start %s on %s: %w\nredis-server output:\n%s",
			s.binary, s.addr, err, output)
	}
	s.cmd = cmd
	s.paused = false
	return nil
}

// listenArgs returns the arguments that put the server on s.port, plain or
// TLS only, and the TLS configuration of the readiness probe (nil for a
// plain server).
func (s *Server) listenArgs() ([]string, *tls.Config, error) {
	t := s.opts.TLS
	if t == nil {
		return []string{"--port", strconv.Itoa(s.port)}, nil, nil
	}
	probe, err := probeConfig(t)
	if err != nil {
		return nil, nil, err
	}
	auth := "no"
	if t.AuthClients {
		auth = "yes"
	}
	return []string{
		"--port", "0",
		"--tls-port", strconv.Itoa(s.port),
		"--tls-cert-file", t.CertFile,
		"--tls-key-file", t.KeyFile,
		"--tls-ca-cert-file", t.CAFile,
		"--tls-auth-clients", auth,
	}, probe, nil
}

// probeConfig is the TLS configuration of the readiness probe: it trusts
// CAFile and, when the server checks clients, presents the server's own
// certificate.
func probeConfig(t *TLS) (*tls.Config, error) {
	ca, err := os.ReadFile(t.CAFile)
	if err != nil {
		return nil, fmt.Errorf("Options.TLS.CAFile: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("Options.TLS.CAFile: no PEM certificate in %s", t.CAFile)
	}
	cfg := &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	if t.AuthClients {
		pair, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("Options.TLS: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// waitReady polls addr with PING, over TLS when tlsConfig is set, until it
// answers, the process exits or the deadline passes. Unless it returns nil,
// cmd has been reaped.
func waitReady(cmd *exec.Cmd, addr string, tlsConfig *tls.Config, deadline time.Time) error {
	interval := 2 * time.Millisecond
	for {
		timeout := min(time.Until(deadline), maxProbeTimeout)
		err := ping(addr, tlsConfig, max(timeout, 10*time.Millisecond))
		if err == nil {
			return nil
		}
		// Checked after the probe, so that an exit during a slow probe (to
		// someone else's listener on the port) is reported as such.
		if processExited(cmd.Process.Pid) {
			_ = cmd.Wait()
			return fmt.Errorf("exited before answering PING (%v)", cmd.ProcessState)
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return fmt.Errorf("no answer to PING in time: %w", err)
		}
		time.Sleep(interval)
		interval = min(2*interval, maxPollInterval)
	}
}

// ping sends an inline PING, over TLS when tlsConfig is set, and reads one
// reply line. A server that demands a password (-NOAUTH) is up and counts
// as an answer; -LOADING does not.
func ping(addr string, tlsConfig *tls.Config, timeout time.Duration) error {
	var conn net.Conn
	var err error
	if tlsConfig == nil {
		conn, err = net.DialTimeout("tcp", addr, timeout)
	} else {
		conn, err = tls.DialWithDialer(&net.Dialer{Timeout: timeout}, "tcp", addr, tlsConfig)
	}
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	if _, err := io.WriteString(conn, "PING\r\n"); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "+PONG" || strings.HasPrefix(line, "-NOAUTH") {
		return nil
	}
	return fmt.Errorf("PING answered %q", line)
}

func fileSize(path string) int64 {
	info, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return info.Size()
}

// tail returns the last tailLines lines written to path after offset.
func tail(path string, offset int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return ""
	}
	// Cap the read: a start failure never writes much, a runaway log might.
	data, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		return ""
	}
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) > tailLines {
		lines = lines[len(lines)-tailLines:]
	}
	if len(lines) == 1 && len(lines[0]) == 0 {
		return ""
	}
	return string(bytes.Join(lines, []byte("\n"))) + "\n"
}
