package main

import (
	"bytes"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated/internal/promtest"
	"github.com/redfed/federated/prometheus/remote"
)

// post sends an empty POST to path with the bearer token, when not empty,
// and returns the status.
func (d *servedDashboard) post(t *testing.T, path, token string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+d.addr+path, bytes.NewReader(nil))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = res.Body.Close()
	return res.StatusCode
}

// Prometheus writes to serve and a second Prometheus reads from it, both
// with the token as their authorization credentials.
func TestServePrometheusRemote(t *testing.T) {
	cfgPath, client := startFederation(t, 2)
	const token = "0123456789abcdef0123456789abcdef"
	d := startServe(t, "--config", cfgPath, "--token", token)
	assert.Equal(t, http.StatusUnauthorized, d.post(t, remoteWritePath, ""), "write without the token")
	assert.Equal(t, http.StatusUnauthorized, d.post(t, remoteReadPath, ""), "read without the token")

	writer := promtest.Start(t, promtest.WriterConfig("http://"+d.addr+remoteWritePath, token))
	host, err := remote.EncodeHost(writer.Addr())
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		points, err := readRange(t.Context(), storeOf(client), host, `up{job="prometheus"}`, time.Now().Add(-time.Minute), time.Now())
		return err == nil && len(points) >= 3
	}, time.Minute, 200*time.Millisecond, "up of %s not in redfed:\n%s\n%s", writer.Addr(), writer.Output(), d.errOut.String())
	end := time.Now().Add(-time.Second)

	reader := promtest.Start(t, promtest.ReaderConfig("http://"+d.addr+remoteReadPath, token))
	want := writer.Raw(t, "up", end)
	require.NotEmpty(t, want)
	assert.Empty(t, promtest.EventuallyMissing(t, want, func() map[string]promtest.Series { return reader.Raw(t, "up", end) }),
		"samples of up the writer holds that the reader does not get:\n%s", reader.Output())
}

// With --remote-write=false serve takes no writes, and still serves reads.
func TestServeRemoteWriteOff(t *testing.T) {
	cfgPath, _ := startFederation(t, 1)
	d := startServe(t, "--config", cfgPath, "--remote-write=false")
	assert.Equal(t, http.StatusNotFound, d.post(t, remoteWritePath, ""))
	assert.Equal(t, http.StatusBadRequest, d.post(t, remoteReadPath, ""), "an empty body is not a read request")

	code, _, errOut := runCLI(t, "", "serve", "--config", cfgPath, "--remote-host-label", "__name__")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "--remote-host-label")
}
