package main

import (
	"io"
	"os"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/redfed/federated"
)

// passwordEnv names the environment variable the Redis password comes from
// when --password-file is not given. Unlike the federation file's
// options.password, it can stay out of a file that is shared or checked in.
const passwordEnv = "REDFED_PASSWORD"

// maxSecretFile bounds what a secrets file holds: a secret is a line.
const maxSecretFile = 4096

// applyPassword sets cfg's Redis password from --password-file (its first
// line) or $REDFED_PASSWORD, in that order; either replaces the federation
// file's options.password. With neither, cfg is left as it is. An empty
// password given on purpose is a usage error; no error shows the password.
func applyPassword(cmd *cobra.Command, cfg *federated.Config) error {
	file, _ := cmd.Flags().GetString("password-file")
	var source, password string
	switch {
	case cmd.Flags().Changed("password-file"):
		p, err := readSecretFile(cmd, "--password-file", file)
		if err != nil {
			return err
		}
		source, password = "--password-file "+file, p
	default:
		v, ok := os.LookupEnv(passwordEnv)
		if !ok {
			return nil
		}
		source, password = "$"+passwordEnv, v
	}
	if password == "" {
		return usagef("%s: the password is empty", source)
	}
	cfg.Options.Password = password
	return nil
}

// readSecretFile reads the secret in a file: its first line, without the
// line's end. flag names the flag that gave path, for errors. A file that
// every user of the machine may read is read, with a warning.
func readSecretFile(cmd *cobra.Command, flag, path string) (string, error) {
	// Without waiting for a writer: open(2) of a FIFO that nobody writes
	// waits for one, where no signal handled by the process reaches.
	// Reads block again (Fd clears O_NONBLOCK), so that a pipe with a
	// writer (a shell's <(...)) is read as it comes.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return "", usagef("%s: %v", flag, err)
	}
	f.Fd()
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Mode().Perm()&0o004 != 0 {
		newLogger(cmd, nil).Warn("secrets file readable by every user of the machine; chmod 600 it",
			"flag", flag, "file", path, "mode", fi.Mode().Perm().String())
	}
	data, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return "", usagef("%s %s: %v", flag, path, err)
	}
	if len(data) > maxSecretFile {
		return "", usagef("%s %s: more than %d bytes; want the secret alone, on one line", flag, path, maxSecretFile)
	}
	line, rest, _ := strings.Cut(string(data), "\n")
	if strings.TrimSpace(rest) != "" {
		return "", usagef("%s %s: more than one line; want the secret alone, on one line", flag, path)
	}
	return strings.TrimSuffix(line, "\r"), nil
}
