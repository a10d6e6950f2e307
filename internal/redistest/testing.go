package redistest

import (
	"errors"
	"sync"
	"testing"
)

// StartT starts a server with the options (at most one Options value), fails
// the test if it cannot, and stops the server when the test ends.
func StartT(t testing.TB, opts ...Options) *Server {
	t.Helper()
	s, err := Start(optionsOf(t, opts))
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() { stopT(t, s) })
	return s
}

// StartN starts n servers concurrently with the same options (at most one
// Options value), fails the test if any cannot start, and stops them all
// when the test ends. The servers get distinct ports.
func StartN(t testing.TB, n int, opts ...Options) []*Server {
	t.Helper()
	if n < 1 {
		t.Fatalf("redistest: StartN: n is %d, want at least 1", n)
	}
	o := optionsOf(t, opts)
	servers := make([]*Server, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range servers {
		wg.Go(func() { servers[i], errs[i] = Start(o) })
	}
	wg.Wait()
	for _, s := range servers {
		if s != nil {
			t.Cleanup(func() { stopT(t, s) })
		}
	}
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("redistest: StartN(%d): %v", n, err)
	}
	return servers
}

// Addrs returns the addresses of servers, in order.
func Addrs(servers []*Server) []string {
	addrs := make([]string, len(servers))
	for i, s := range servers {
		addrs[i] = s.Addr()
	}
	return addrs
}

func optionsOf(t testing.TB, opts []Options) Options {
	t.Helper()
	switch len(opts) {
	case 0:
		return Options{}
	case 1:
		return opts[0]
	default:
		t.Fatalf("redistest: got %d Options values, want at most one", len(opts))
		return Options{}
	}
}

func stopT(t testing.TB, s *Server) {
	t.Helper()
	if err := s.Stop(); err != nil {
		t.Errorf("redistest: stop %s: %v", s.Addr(), err)
	}
}
