// Package redistest starts real redis-server processes on free 127.0.0.1
// ports for tests and demos, and injects faults into them: Kill (SIGKILL),
// Pause (SIGSTOP), Resume (SIGCONT) and Restart on the same address.
//
// Every server runs in the foreground as a child of the calling process, with
// persistence off (--save "" --appendonly no), so a restarted server is
// always empty. Its log and captured stdout/stderr live in the server's
// directory; when a start fails, the error carries the tail of both.
//
// Concurrency: a Server is safe for concurrent use. Its methods serialise on
// one mutex, so a Restart that is waiting for PING holds up a concurrent
// Running or PID until the server answers or the start times out. No
// goroutine outlives a call: processes are reaped synchronously by Kill,
// Stop and Restart, which keeps goleak checks in other packages clean.
//
// Ports: the port of a server is held by a bound, non-listening socket from
// Start until Stop. While the server is killed, connections to the port are
// refused, but neither the kernel's ephemeral port picker (Listen on port 0,
// outgoing connections) nor another Start can take it, so Restart gets the
// same address back.
//
// TLS: with Options.TLS a server listens for TLS only, on the port Addr
// reports (--tls-port PORT --port 0), and readiness is probed over TLS.
//
// Failure behaviour: if the test binary dies, the kernel sends SIGKILL to
// its servers (PR_SET_PDEATHSIG on Linux), so they do not linger. StartT and
// StartN fail the test with t.Fatalf and register t.Cleanup to Stop. If
// redis-server is missing, the error says how to install it.
package redistest
