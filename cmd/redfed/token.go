package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/redfed/federated/cmd/redfed/internal/dashboard"
)

// tokenEnv names the environment variable serve takes its token from when
// no flag gives one. Unlike a flag's value, it does not show in ps.
const tokenEnv = "REDFED_TOKEN"

// dashboardToken returns the token serve requires: from --token, from the
// file --token-file names (its first line, without the line's end), or
// from $REDFED_TOKEN, in that order; "" when none gives one. A token that
// dashboard.ValidateToken refuses, an empty one given on purpose, or both
// flags at once, is a usage error that says where the token came from and
// never shows it.
func dashboardToken(cmd *cobra.Command, token, file string) (string, error) {
	flags := cmd.Flags()
	var source string
	switch {
	case flags.Changed("token") && flags.Changed("token-file"):
		return "", usagef("--token and --token-file: give the token one way")
	case flags.Changed("token"):
		source = "--token"
	case flags.Changed("token-file"):
		source = "--token-file " + file
		t, err := readSecretFile(cmd, "--token-file", file)
		if err != nil {
			return "", err
		}
		token = t
	default:
		v, ok := os.LookupEnv(tokenEnv)
		if !ok {
			return "", nil
		}
		source, token = "$"+tokenEnv, v
	}
	if token == "" {
		return "", usagef("%s: the token is empty", source)
	}
	if err := dashboard.ValidateToken(token); err != nil {
		return "", usagef("%s: token: %v", source, err)
	}
	return token, nil
}
