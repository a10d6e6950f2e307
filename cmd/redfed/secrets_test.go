package main

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated/internal/redistest"
)

// TestPasswordSources checks that the Redis password can come from
// --password-file or $REDFED_PASSWORD instead of the federation file, that
// a file every user may read is used with a warning, and that no output
// shows the password.
func TestPasswordSources(t *testing.T) {
	const password = "s3cret-Pa55word with spaces"
	srv := redistest.StartT(t, redistest.Options{Args: []string{"--requirepass", password}})
	cfg := writeConfig(t, fmt.Sprintf("nodes:\n  redis_1: {address: %q}\noptions: {command_timeout: 2s}\n", srv.Addr()))
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, []byte(content), mode))
		require.NoError(t, os.Chmod(path, mode)) // past the umask
		return path
	}
	private := write("private", password+"\n", 0o600)
	public := write("public", password+"\r\n", 0o644)
	wrong := write("wrong", "not-the-password\n", 0o600)
	fifo := filepath.Join(dir, "fifo") // that nobody writes: open(2) waited for a writer
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	t.Setenv(passwordEnv, "")
	os.Unsetenv(passwordEnv)

	for _, tc := range []struct {
		name     string
		env      *string // $REDFED_PASSWORD, when not nil
		args     []string
		wantCode int
		want     string // in standard error
	}{
		{"none", nil, nil, 1, "NOAUTH"},
		{"file", nil, []string{"--password-file", private}, 0, ""},
		{"environment", ptr(password), nil, 0, ""},
		{"file before environment", ptr("not-the-password"), []string{"--password-file", private}, 0, ""},
		{"world-readable file", nil, []string{"--password-file", public}, 0, "secrets file readable by every user of the machine"},
		{"wrong password", nil, []string{"--password-file", wrong}, 1, "WRONGPASS"},
		{"empty environment", ptr(""), nil, 2, "$REDFED_PASSWORD: the password is empty"},
		{"empty file", nil, []string{"--password-file", write("empty", "\n", 0o600)}, 2, ": the password is empty"},
		{"missing file", nil, []string{"--password-file", filepath.Join(dir, "nope")}, 2, "--password-file: open "},
		{"two lines", nil, []string{"--password-file", write("two", password+"\nmore\n", 0o600)}, 2, "more than one line"},
		{"FIFO nobody writes", nil, []string{"--password-file", fifo}, 2, ": the password is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != nil {
				t.Setenv(passwordEnv, *tc.env)
			}
			code, out, errOut := runCLI(t, "", append([]string{"hosts", "--config", cfg, "--since", "1h"}, tc.args...)...)
			assert.Equal(t, tc.wantCode, code, errOut)
			assert.Contains(t, errOut, tc.want)
			assert.NotContains(t, out+errOut, password[:10], "the password is never shown")
			assert.NotContains(t, out+errOut, "not-the-password", "the password is never shown")
		})
	}
}

// A token file every user may read works, with a warning.
func TestTokenFileReadableByAll(t *testing.T) {
	cfgPath, _ := startFederation(t, 1)
	path := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(path, []byte("0123456789abcdef0123456789abcdef\n"), 0o644))
	require.NoError(t, os.Chmod(path, 0o644))
	d := startServe(t, "--config", cfgPath, "--token-file", path)
	code, _ := d.get(t, "/api/hosts", "", "0123456789abcdef0123456789abcdef")
	assert.Equal(t, 200, code)
	d.cancel()
	d.wg.Wait()
	assert.Contains(t, d.errOut.String(), "secrets file readable by every user of the machine")
	assert.NotContains(t, d.errOut.String(), "0123456789abcdef")
}

func ptr[T any](v T) *T { return &v }
