package federated

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redfed/federated/internal/replyguard"
)

// guardedDialer returns the dialer of a server's go-redis clients. It dials
// with go-redis's own dialer, so connections are made as go-redis makes
// them: TCP with the dial timeout and go-redis's keep-alive settings, then
// TLS when tlsConfig is set, with the server name taken from the address
// when tlsConfig names none. It wraps every connection in a replyguard.Conn:
// go-redis allocates what a reply declares before reading it, so a reply
// such as *2000000000 would make the process allocate tens of gigabytes;
// the wrapper fails the read instead, which go-redis takes for a broken
// connection and the client for a server fault.
func guardedDialer(timeout time.Duration, tlsConfig *tls.Config) func(context.Context, string, string) (net.Conn, error) {
	dial := redis.NewDialer(&redis.Options{DialTimeout: timeout, TLSConfig: tlsConfig})
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		guarded, err := replyguard.Wrap(conn, replyguard.Limits{})
		if err != nil {
			_ = conn.Close()
			return nil, err
		}
		return guarded, nil
	}
}

// goRedisLog passes go-redis's log lines to a slog.Logger.
type goRedisLog struct{ l *slog.Logger }

func (g goRedisLog) Printf(ctx context.Context, format string, v ...any) {
	g.l.WarnContext(ctx, fmt.Sprintf(format, v...), "source", "go-redis")
}
