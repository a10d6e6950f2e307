package federated_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A program that imports the library's packages gets go-redis, the ring's
// hash, YAML and their own dependencies in its module graph, and none of
// what the command line, the dashboard, the demo or the Prometheus
// collectors use: those live in modules of their own.
func TestLibraryModuleGraph(t *testing.T) {
	root, err := filepath.Abs(".")
	require.NoError(t, err)
	dir := t.TempDir()
	write := func(name, text string) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644))
	}
	write("go.mod", "module example.com/consumer\n\ngo 1.26.0\n\nrequire github.com/redfed/federated v0.0.0\n\nreplace github.com/redfed/federated => "+root+"\n")
	write("main.go", `package main

import (
	"github.com/redfed/federated"
	"github.com/redfed/federated/syncer"
)

func main() {
	c, _ := federated.New(federated.Config{})
	_, _ = syncer.NewFromClient(c, nil, syncer.Options{})
}
`)
	sum, err := os.ReadFile("go.sum")
	require.NoError(t, err)
	write("go.sum", string(sum))
	gocmd := func(args ...string) string {
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		// The library's own go.sum and the module cache have every module
		// it needs: nothing is fetched.
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod", "GOPROXY=off")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "go %s: %s", strings.Join(args, " "), out)
		return string(out)
	}
	gocmd("mod", "tidy")
	graph := gocmd("mod", "graph")
	for _, unwanted := range []string{"spf13/cobra", "chromedp", "miniredis", "prometheus", "golang.org/x/term"} {
		assert.NotContains(t, graph, unwanted, "the library's module graph")
	}
	assert.Contains(t, graph, "github.com/redis/go-redis/v9")
}
