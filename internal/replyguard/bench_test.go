package replyguard

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// zrangeReply is a ZRANGEBYSCORE reply of n metric points, as Range reads
// them, or with scores, as the syncer reads a journal.
func zrangeReply(n int, withScores bool) string {
	var b strings.Builder
	count := n
	if withScores {
		count *= 2
	}
	fmt.Fprintf(&b, "*%d\r\n", count)
	for i := range n {
		member := fmt.Sprintf("%d:%d.%d", 1732550400+i, i%1000, i%7)
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(member), member)
		if withScores {
			score := fmt.Sprint(1732550400 + i)
			fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(score), score)
		}
	}
	return b.String()
}

// benchStream is a realistic stream of replies: point ranges, journal pages
// with scores, and the small answers of metric writes (script results,
// statuses, integers), back to back.
func benchStream() []byte {
	var b strings.Builder
	for range 4 {
		b.WriteString(zrangeReply(3600, false))
		b.WriteString(zrangeReply(1000, true))
		for range 500 {
			b.WriteString("*2\r\n:1\r\n:1\r\n+OK\r\n:1\r\n$-1\r\n")
		}
	}
	return []byte(b.String())
}

// BenchmarkScan measures the scanner alone over benchStream, in the 32 KiB
// chunks go-redis reads.
func BenchmarkScan(b *testing.B) {
	stream := benchStream()
	s, err := NewScanner(Limits{})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		for in := stream; len(in) > 0; {
			n := min(32<<10, len(in))
			if _, err := s.Scan(in[:n]); err != nil {
				b.Fatal(err)
			}
			in = in[n:]
		}
	}
}

// BenchmarkGoRedisZRange compares go-redis reading a ZRANGE of 3,600 points
// over a connection in memory, without and with the Conn in between.
func BenchmarkGoRedisZRange(b *testing.B) {
	reply := zrangeReply(3600, false)
	ctx := context.Background()
	for _, guarded := range []bool{false, true} {
		b.Run(map[bool]string{false: "plain", true: "guarded"}[guarded], func(b *testing.B) {
			c := redis.NewClient(&redis.Options{Addr: "memory:0", MaxRetries: -1, DisableIdentity: true,
				MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
				Dialer: func(context.Context, string, string) (net.Conn, error) {
					conn := &replayConn{reply: reply}
					if guarded {
						return Wrap(conn, Limits{})
					}
					return conn, nil
				}})
			defer c.Close()
			b.SetBytes(int64(len(reply)))
			b.ReportAllocs()
			for b.Loop() {
				if got, err := c.ZRange(ctx, "k", 0, -1).Result(); err != nil || len(got) != 3600 {
					b.Fatal(len(got), err)
				}
			}
		})
	}
}

// replayConn is a server in memory: it refuses HELLO, the first command,
// as a Redis before 6 does, and answers every other command with reply.
type replayConn struct {
	reply   string
	pending string
	hello   bool // HELLO was answered
}

func (c *replayConn) Write(p []byte) (int, error) {
	if !c.hello {
		c.hello = true
		c.pending += "-ERR unknown command 'HELLO'\r\n"
	} else {
		c.pending += c.reply
	}
	return len(p), nil
}

func (c *replayConn) Read(p []byte) (int, error) {
	if c.pending == "" {
		return 0, io.EOF
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}

func (c *replayConn) Close() error                     { return nil }
func (c *replayConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *replayConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *replayConn) SetDeadline(time.Time) error      { return nil }
func (c *replayConn) SetReadDeadline(time.Time) error  { return nil }
func (c *replayConn) SetWriteDeadline(time.Time) error { return nil }
