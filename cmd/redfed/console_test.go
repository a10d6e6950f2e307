package main

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader in different
// goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestConsoleStatusLine(t *testing.T) {
	var buf bytes.Buffer
	c := &console{w: &buf, tty: true}
	c.SetStatus("10 lines read")
	c.Printf("line 3: bad\n")
	c.SetStatus("20 lines read")
	c.ClearStatus()
	c.Printf("done\n")
	assert.Equal(t, eraseLine+"10 lines read"+
		eraseLine+"line 3: bad\n10 lines read"+
		eraseLine+"20 lines read"+
		eraseLine+"done\n", buf.String())

	// Not a terminal: messages only.
	buf.Reset()
	c = newConsole(&buf)
	c.SetStatus("10 lines read")
	c.Printf("line 3: bad\n")
	c.ClearStatus()
	assert.Equal(t, "line 3: bad\n", buf.String())
}

func TestProgress(t *testing.T) {
	var buf syncBuffer
	c := &console{w: &buf, tty: true}
	var calls sync.WaitGroup
	calls.Add(1)
	var once sync.Once
	stop := startProgress(c, time.Millisecond, func(elapsed time.Duration) string {
		once.Do(calls.Done)
		return "42 points"
	})
	calls.Wait()
	stop()
	stop() // idempotent
	out := buf.String()
	assert.True(t, strings.HasPrefix(out, eraseLine+"42 points"), "%q", out)
	assert.True(t, strings.HasSuffix(out, "42 points"+eraseLine), "stop clears the line: %q", out)

	// Not a terminal: nothing is drawn and nothing runs.
	var plain bytes.Buffer
	stop = startProgress(newConsole(&plain), time.Millisecond, func(time.Duration) string {
		t.Error("status drawn on a console that is not a terminal")
		return ""
	})
	stop()
	assert.Empty(t, plain.String())
}

func TestEveryCommandHasHelpAndExample(t *testing.T) {
	var walk func(cmd *cobra.Command)
	walk = func(cmd *cobra.Command) {
		for _, sub := range cmd.Commands() {
			// cobra's own help and completion commands document themselves.
			if sub.Name() == "help" || sub.Name() == "completion" {
				continue
			}
			walk(sub)
		}
		t.Run(cmd.CommandPath(), func(t *testing.T) {
			assert.NotEmpty(t, cmd.Short)
			assert.NotEmpty(t, cmd.Example)
			args := append(strings.Fields(cmd.CommandPath())[1:], "--help")
			code, out, errOut := runCLI(t, "", args...)
			require.Equal(t, 0, code, errOut)
			assert.Contains(t, out, "Examples:")
			assert.Contains(t, out, "--config", "the global flags are listed")
		})
	}
	walk(newRootCmd())
}

func TestUnknownCommands(t *testing.T) {
	code, _, errOut := runCLI(t, "", "confg")
	assert.Equal(t, 2, code)
	assert.Equal(t, "redfed: unknown command \"confg\" for \"redfed\"; did you mean config?\n", errOut)

	code, _, errOut = runCLI(t, "", "config", "bogus")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, `redfed config: unknown command "bogus" for "redfed config"`)

	// A group alone prints its help.
	code, out, _ := runCLI(t, "", "config")
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "init")
	code, out, _ = runCLI(t, "")
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "Available Commands")

	code, _, errOut = runCLI(t, "", "version", "extra")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "redfed version: unknown command \"extra\"")
}
