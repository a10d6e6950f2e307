package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/redfed/federated/internal/fedtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// runCLI runs the command line in-process and returns its exit code and
// output streams.
func runCLI(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(t.Context(), args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

func writeConfig(t *testing.T, doc string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fed.yaml")
	require.NoError(t, os.WriteFile(path, []byte(doc), 0o600))
	return path
}

const perlFederation = `
nodes:
  redis_1: {address: "127.0.0.1:7001"}
  redis_2: {address: "127.0.0.1:7002"}
  redis_3: {address: "127.0.0.1:7003"}
  redis_4: {address: "127.0.0.1:7004"}
  redis_5: {address: "127.0.0.1:7005"}
  redis_6: {address: "127.0.0.1:7006"}
  redis_7: {addresses: ["127.0.0.1:7007", "127.0.0.2:7007"]}
  redis_8: {address: "127.0.0.1:7008"}
options: {ring: perl}
`

func TestRouteArgsAndStdin(t *testing.T) {
	cfg := writeConfig(t, perlFederation)
	// Rows of the Perl module's own placement (testdata/perl-ring).
	code, out, errOut := runCLI(t, "", "route", "--config", cfg,
		"2026-12-25:cache944.sfo:req.latency.p99", "2027-01-27:web781.lax:tcp.conns")
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, "2026-12-25:cache944.sfo:req.latency.p99\tredis_8\t127.0.0.1:7008\n"+
		"2027-01-27:web781.lax:tcp.conns\tredis_7\t127.0.0.1:7007,127.0.0.2:7007\n", out)

	t.Setenv("REDFED_CONFIG", cfg)
	code, out, errOut = runCLI(t, "2026-12-21:web284.sin:swap.used\n\n2026-11-12:worker801.lax:req.errors\n", "route")
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, "2026-12-21:web284.sin:swap.used\tredis_2\t127.0.0.1:7002\n"+
		"2026-11-12:worker801.lax:req.errors\tredis_1\t127.0.0.1:7001\n", out)

	// Bytes that are not UTF-8 are quoted, each as itself: \xff and \xfe
	// would look alike on a terminal.
	code, out, errOut = runCLI(t, "", "route", "a\xffb", "a\xfeb")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, `"a\xffb"`)
	assert.Contains(t, out, `"a\xfeb"`)
}

// route prints each key read from standard input as it comes, not when
// a page of output filled or the input ended: tail -f keys | redfed route.
// A key that does not print is quoted, so that a tab in it does not make
// a column; --json refuses a key JSON cannot hold.
func TestRouteWritesEachKeyAsItComes(t *testing.T) {
	cfg := writeConfig(t, perlFederation)
	in, keys := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(t.Context(), []string{"route", "--config", cfg}, in, outW, io.Discard)
		_ = outW.Close()
	}()
	lines := bufio.NewReader(outR)
	// The second key comes with a blank line, the third with the start
	// of the next line: each is printed all the same.
	for _, key := range []string{"2026-12-25:cache944.sfo:req.latency.p99", "tab\there", `"tab\there"`, "third"} {
		tail := map[string]string{"tab\there": "\n", "third": "par"}[key]
		_, err := io.WriteString(keys, key+"\n"+tail)
		require.NoError(t, err)
		got := make(chan string, 1)
		go func() {
			line, _ := lines.ReadString('\n')
			got <- line
		}()
		select {
		case line := <-got:
			assert.Equal(t, 3, len(strings.Split(line, "\t")), "three columns: %q", line)
			if strings.HasPrefix(key, `"`) || strings.Contains(key, "\t") {
				// Quoted: a key that looks quoted is not the one it
				// looks like.
				assert.True(t, strings.HasPrefix(line, strconv.Quote(key)+"\t"), line)
			} else {
				assert.True(t, strings.HasPrefix(line, key+"\t"), line)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%q was not printed while the input stayed open", key)
		}
	}
	require.NoError(t, keys.Close())
	_, _ = io.Copy(io.Discard, outR)
	assert.Equal(t, 0, <-done)

	code, out, errOut := runCLI(t, "ok\nbad\xff\n", "route", "--config", cfg, "--json")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "line 2 of standard input: not UTF-8")
	assert.Equal(t, 1, strings.Count(out, "\n"), "the key before it: %s", out)
}

func TestRouteErrors(t *testing.T) {
	t.Setenv("REDFED_CONFIG", "")
	code, _, errOut := runCLI(t, "", "route", "k")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "--config")

	bad := writeConfig(t, "nodes:\n  a: {address: \"nohost\"}\n")
	code, _, errOut = runCLI(t, "", "route", "--config", bad, "k")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "nodes.a.address")

	code, _, errOut = runCLI(t, "", "route", "--bogus")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "bogus")
}

// runInterrupted runs the command line in-process on a standard input that
// stays open, makes each write to it in turn (a write returns once the
// command's reader took it), waits for ready, then interrupts the command,
// which must stop within seconds. It returns the exit code and output.
func runInterrupted(t *testing.T, writes []string, ready func() bool, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	in, w := io.Pipe()
	t.Cleanup(func() { _ = w.Close() })
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out, errOut bytes.Buffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, in, &out, &errOut) }()
	written := make(chan error, 1)
	go func() {
		for _, s := range writes {
			if _, err := io.WriteString(w, s); err != nil {
				written <- err
				return
			}
		}
		written <- nil
	}()
	select {
	case err := <-written:
		require.NoError(t, err)
	case code := <-done:
		t.Fatalf("%s ended (exit %d) before it read its input: %s", args[0], code, errOut.String())
	}
	require.Eventually(t, ready, 5*time.Second, 10*time.Millisecond)
	cancel()
	select {
	case code = <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s did not stop on the interrupt while standard input was open", args[0])
	}
	return code, out.String(), errOut.String()
}

// TestRouteInterruptedWhileReading interrupts route while standard input is
// open and sends nothing more: it stops at once, having routed the keys
// read, and not the start of a line cut by the interrupt.
func TestRouteInterruptedWhileReading(t *testing.T) {
	cfg := writeConfig(t, perlFederation)
	code, out, errOut := runInterrupted(t,
		[]string{"2026-12-21:web284.sin:swap.used\n", "2026-11-12:worker801.lax:req", ".errors"},
		func() bool { return true }, "route", "--config", cfg)
	assert.Equal(t, 1, code)
	assert.Equal(t, "2026-12-21:web284.sin:swap.used\tredis_2\t127.0.0.1:7002\n", out)
	assert.Contains(t, errOut, "interrupted at line 2 of standard input: context canceled")
}

func TestReadLine(t *testing.T) {
	cut := errors.New("cut")
	for _, tc := range []struct {
		name  string
		input io.Reader
		want  []string // lines, then the error's text
	}{
		{"lines", strings.NewReader("a\nb\r\n\nc"), []string{"a", "b", "", "c", "EOF"}},
		{"\\r at the end", strings.NewReader("a\r\nb\r"), []string{"a", "b", "EOF"}},
		{"longer than the buffer", strings.NewReader(strings.Repeat("x", 40) + "\ny\n"), []string{strings.Repeat("x", 40), "y", "EOF"}},
		{"too long", strings.NewReader(strings.Repeat("x", 65) + "\ny\n" + strings.Repeat("z", 65)), []string{"line too long", "y", "line too long", "EOF"}},
		{"at the limit with \\r\\n", strings.NewReader(strings.Repeat("x", 64) + "\r\n"), []string{strings.Repeat("x", 64), "EOF"}},
		{"cut by an error", io.MultiReader(strings.NewReader("a\nb"), iotest.ErrReader(cut)), []string{"a", "cut"}},
		{"long line cut", io.MultiReader(strings.NewReader(strings.Repeat("x", 40)), iotest.ErrReader(cut)), []string{"cut"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := bufio.NewReaderSize(tc.input, 16)
			var got []string
			for {
				line, err := readLine(r, 64)
				if errors.Is(err, errLineTooLong) {
					got = append(got, err.Error())
					continue
				}
				if err != nil {
					got = append(got, err.Error())
					break
				}
				got = append(got, line)
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

// FuzzReadLine checks readLine against splitting the whole input at "\n".
func FuzzReadLine(f *testing.F) {
	for _, seed := range []string{"", "a\nb", "a\r\nb\r\n", "\r\n\n\r", strings.Repeat("x", 70) + "\ny", strings.Repeat("y", 64) + "\r\n"} {
		f.Add(seed)
	}
	const limit = 64
	f.Fuzz(func(t *testing.T, input string) {
		var want []string
		pieces := strings.Split(input, "\n")
		if pieces[len(pieces)-1] == "" {
			pieces = pieces[:len(pieces)-1] // no line after the last end of line
		}
		for _, p := range pieces {
			p = strings.TrimSuffix(p, "\r")
			if len(p) > limit {
				p = "(too long)"
			}
			want = append(want, p)
		}
		r := bufio.NewReaderSize(strings.NewReader(input), 16)
		var got []string
		for {
			line, err := readLine(r, limit)
			if errors.Is(err, io.EOF) {
				break
			}
			if errors.Is(err, errLineTooLong) {
				line = "(too long)"
			} else {
				require.NoError(t, err)
			}
			got = append(got, line)
		}
		assert.Equal(t, want, got)
	})
}

// Helpers shared with other packages' tests.
var (
	merge     = fedtest.Merge
	readRange = fedtest.RangeOf
	sameDay   = fedtest.SameDay
)
