package replyguard

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated/internal/redistest"
)

func wrapT(t *testing.T, c net.Conn) net.Conn {
	t.Helper()
	g, err := Wrap(c, Limits{})
	require.NoError(t, err)
	return g
}

func TestConnStopsAtTheBadReply(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	honest := honestStream()
	go func() {
		defer server.Close()
		// Honest replies, a byte at a time and then whole, then a hostile
		// header in the same write as the last honest reply.
		for i := range len(honest) {
			if _, err := server.Write([]byte{honest[i]}); err != nil {
				return
			}
		}
		_, _ = server.Write([]byte(honest + "*2000000000\r\n"))
	}()

	g := wrapT(t, client)
	got, err := io.ReadAll(bufio.NewReaderSize(g, 16))
	assert.Equal(t, honest+honest, string(got), "every reply before the bad one passes, unchanged")
	var op *net.OpError
	require.ErrorAs(t, err, &op, "a read error, as a connection gives")
	assert.Equal(t, "read", op.Op)
	require.ErrorIs(t, err, ErrTooLarge)
	assert.Contains(t, err.Error(), `header "*2000000000" declares 2000000000 elements, over the limit of 16777216`)

	n, again := g.Read(make([]byte, 10))
	assert.Zero(t, n)
	assert.Equal(t, err, again, "the failure is final")
	assert.Equal(t, op, errors.Unwrap(err), "a *net.OpError one layer down, which go-redis's unwrap of a failed handshake leaves")
}

func TestWrapKeepsTheSocket(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer raw.Close()
	peer := <-accepted
	require.NotNil(t, peer)
	defer peer.Close()

	g := wrapT(t, raw)
	sc, ok := g.(syscall.Conn)
	require.True(t, ok, "a wrapped TCP connection is a syscall.Conn, for go-redis's check before reuse")
	rc, err := sc.SyscallConn()
	require.NoError(t, err)
	require.NotNil(t, rc)
	assert.Same(t, raw, g.(interface{ NetConn() net.Conn }).NetConn())
	assert.Equal(t, raw.RemoteAddr(), g.RemoteAddr())

	// A peek at the socket leaves the bytes for Read and the scanner.
	_, err = peer.Write([]byte("+OK\r\n"))
	require.NoError(t, err)
	var peeked int
	require.Eventually(t, func() bool {
		require.NoError(t, rc.Read(func(fd uintptr) bool {
			var b [8]byte
			peeked, _, _ = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			return true
		}))
		return peeked == 5
	}, 5*time.Second, time.Millisecond)
	buf := make([]byte, 16)
	n, err := g.Read(buf)
	require.NoError(t, err)
	assert.Equal(t, "+OK\r\n", string(buf[:n]))

	pipe, other := net.Pipe()
	defer pipe.Close()
	defer other.Close()
	_, ok = wrapT(t, pipe).(syscall.Conn)
	assert.False(t, ok, "a connection without a socket stays one")

	_, err = Wrap(raw, Limits{MaxDepth: -1})
	require.ErrorContains(t, err, "MaxDepth is -1")
}

// tap records what is read through it.
type tap struct {
	net.Conn
	mu  sync.Mutex
	got bytes.Buffer
}

func (t *tap) Read(p []byte) (int, error) {
	n, err := t.Conn.Read(p)
	t.mu.Lock()
	t.got.Write(p[:n])
	t.mu.Unlock()
	return n, err
}

func (t *tap) bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return bytes.Clone(t.got.Bytes())
}

// tappedDialer dials like go-redis and puts a Conn between two taps: what
// the socket gave, and what the Conn passed on.
type tappedDialer struct {
	mu    sync.Mutex
	pairs [][2]*tap // below, above the Conn
}

func (d *tappedDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	raw, err := (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	below := &tap{Conn: raw}
	g, err := Wrap(below, Limits{})
	if err != nil {
		return nil, err
	}
	above := &tap{Conn: g}
	d.mu.Lock()
	d.pairs = append(d.pairs, [2]*tap{below, above})
	d.mu.Unlock()
	return above, nil
}

func TestConnPassesRedisReplies(t *testing.T) {
	srv := redistest.StartT(t, redistest.Options{Args: []string{"--enable-debug-command", "yes"}})
	ctx := context.Background()

	// Data big enough that replies span many reads and go-redis's buffer.
	seed := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer seed.Close()
	members := make([]redis.Z, 100_000)
	for i := range members {
		members[i] = redis.Z{Score: float64(1732550400 + i), Member: fmt.Sprintf("%d:%d.5", 1732550400+i, i)}
	}
	for i := 0; i < len(members); i += 10_000 {
		require.NoError(t, seed.ZAdd(ctx, "z", members[i:i+10_000]...).Err())
	}
	fields := make(map[string]any, 20_000)
	for i := range 20_000 {
		fields["f"+strconv.Itoa(i)] = bytes.Repeat([]byte{byte(i)}, i%300)
	}
	require.NoError(t, seed.HSet(ctx, "h", fields).Err())
	big := bytes.Repeat([]byte("0123456789\r\n$*"), 300_000) // 4.2 MB with RESP in it
	require.NoError(t, seed.Set(ctx, "big", big, 0).Err())
	require.NoError(t, seed.SAdd(ctx, "s", "a", "b", "c").Err())

	for _, protocol := range []int{2, 3} {
		t.Run(fmt.Sprint("RESP", protocol), func(t *testing.T) {
			d := &tappedDialer{}
			c := redis.NewClient(&redis.Options{Addr: srv.Addr(), Protocol: protocol, Dialer: d.dial, PoolSize: 2})
			defer c.Close()

			zs, err := c.ZRangeWithScores(ctx, "z", 0, -1).Result()
			require.NoError(t, err)
			require.Equal(t, members, zs)
			h, err := c.HGetAll(ctx, "h").Result()
			require.NoError(t, err)
			require.Len(t, h, len(fields))
			for k, v := range fields {
				require.Equal(t, string(v.([]byte)), h[k])
			}
			got, err := c.Get(ctx, "big").Bytes()
			require.NoError(t, err)
			require.Equal(t, big, got)

			cmds, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
				for i := range 2000 {
					switch i % 5 {
					case 0:
						p.ZRange(ctx, "z", int64(i), int64(i+50))
					case 1:
						p.HGet(ctx, "h", "f"+strconv.Itoa(i))
					case 2:
						p.Get(ctx, "missing")
					case 3:
						p.SMembers(ctx, "s")
					default:
						p.Incr(ctx, "n")
					}
				}
				return nil
			})
			require.ErrorIs(t, err, redis.Nil) // the GETs of a missing key
			assert.Len(t, cmds, 2000)

			// Every RESP3 type Redis can write, in both protocols (DEBUG
			// PROTOCOL answers RESP2 clients with their RESP2 forms).
			for _, typ := range []string{"string", "integer", "double", "bignum", "null", "array", "set", "map", "attrib", "push", "verbatim", "true", "false"} {
				// A null is redis.Nil, a push refused to RESP2 an error
				// reply: answers all the same.
				var reply redis.Error
				if err := c.Do(ctx, "DEBUG", "PROTOCOL", typ).Err(); err != nil && !errors.As(err, &reply) {
					require.ErrorIs(t, err, redis.Nil, "DEBUG PROTOCOL %s", typ)
				}
			}
			info, err := c.Info(ctx, "server").Result() // a verbatim string in RESP3
			require.NoError(t, err)
			assert.Contains(t, info, "redis_version")
			nested, err := c.Eval(ctx, "return {1, {2, {3, {'x', {}}}}, redis.status_reply('ok'), redis.error_reply('ERR e')}", nil).Result()
			require.NoError(t, err)
			assert.Len(t, nested, 4)

			// Pushes: a subscription's confirmations and a message.
			sub := c.Subscribe(ctx, "ch")
			_, err = sub.Receive(ctx)
			require.NoError(t, err)
			require.NoError(t, seed.Publish(ctx, "ch", big[:1000]).Err())
			msg, err := sub.ReceiveMessage(ctx)
			require.NoError(t, err)
			assert.Equal(t, string(big[:1000]), msg.Payload)
			require.NoError(t, sub.Close())
			require.NoError(t, c.Close())

			d.mu.Lock()
			defer d.mu.Unlock()
			require.NotEmpty(t, d.pairs)
			total := 0
			for i, p := range d.pairs {
				below, above := p[0].bytes(), p[1].bytes()
				require.True(t, bytes.Equal(below, above), "connection %d: %d bytes from the socket, %d passed", i, len(below), len(above))
				total += len(below)
			}
			assert.Greater(t, total, len(big)+len(members)*20, "the replies went through the taps")
		})
	}
}
