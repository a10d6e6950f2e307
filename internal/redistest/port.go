package redistest

import (
	"fmt"
	"syscall"
)

// portReservation is a TCP socket bound to 127.0.0.1:port that never
// listens. It keeps the port out of the kernel's ephemeral range (Listen on
// port 0, the local port of outgoing connections) while redis-server is
// down, and connections to the port are refused because nothing listens.
// It does not block redis-server: both sockets set SO_REUSEADDR and only
// one of them listens, which Linux and the BSDs allow.
type portReservation struct {
	fd   int
	port int
}

// reservePort binds a reservation to port, or to a free port if port is 0.
func reservePort(port int) (*portReservation, error) {
	// Hold ForkLock so that no child started meanwhile inherits the socket
	// before it is marked close-on-exec; redis-server must not keep the
	// reservation alive after Stop closes ours.
	syscall.ForkLock.RLock()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err == nil {
		syscall.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, fmt.Errorf("redistest: reserve port: %w", err)
	}
	r := &portReservation{fd: fd}
	if err := r.bind(port); err != nil {
		_ = syscall.Close(fd)
		return nil, fmt.Errorf("redistest: reserve port %d: %w", port, err)
	}
	return r, nil
}

func (r *portReservation) bind(port int) error {
	if err := syscall.SetsockoptInt(r.fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
		return err
	}
	if err := syscall.Bind(r.fd, &syscall.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		return err
	}
	sa, err := syscall.Getsockname(r.fd)
	if err != nil {
		return err
	}
	inet4, ok := sa.(*syscall.SockaddrInet4)
	if !ok {
		return fmt.Errorf("unexpected socket address %T", sa)
	}
	r.port = inet4.Port
	return nil
}

// close releases the port. It is safe on a nil reservation.
func (r *portReservation) close() {
	if r == nil || r.fd < 0 {
		return
	}
	_ = syscall.Close(r.fd)
	r.fd = -1
}
