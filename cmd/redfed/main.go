// Command redfed runs and inspects a federation of Redis servers: where keys
// live, and (in later commands) metrics, checks, repairs and a dashboard.
package main

import (
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
