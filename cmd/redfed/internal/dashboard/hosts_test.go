package dashboard

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Without a token, the dashboard serves only requests that name it by a
// loopback name or by a name it was given: a page that points its own name
// at 127.0.0.1 (DNS rebinding) is refused.
func TestHostHeader(t *testing.T) {
	src := &fakeSource{hosts: []string{"web1"}, metrics: []string{"cpu"}}
	srv := serve(t, Options{Source: src, AllowedHosts: []string{"Dash.Example.com."}})
	tests := []struct {
		host string
		want int
	}{
		{"localhost", http.StatusOK},
		{"localhost:8080", http.StatusOK},
		{"LOCALHOST.:8080", http.StatusOK},
		{"127.0.0.1", http.StatusOK},
		{"127.0.0.1:8080", http.StatusOK},
		{"[::1]", http.StatusOK},
		{"[::1]:8080", http.StatusOK},
		{"dash.example.com", http.StatusOK},
		{"dash.example.com:443", http.StatusOK},
		{"attacker.example", http.StatusMisdirectedRequest},
		{"attacker.example:8080", http.StatusMisdirectedRequest},
		{"localhost.attacker.example", http.StatusMisdirectedRequest},
		{"127.0.0.1.nip.io", http.StatusMisdirectedRequest},
		{"10.0.0.1:8080", http.StatusMisdirectedRequest},
		{"example.com", http.StatusMisdirectedRequest},
	}
	for _, tt := range tests {
		for _, path := range []string{"/", "/status", "/api/hosts", "/api/series?host=web1&metric=cpu", "/static/dashboard.js"} {
			res, body := getHost(t, srv, path, tt.host)
			require.Equal(t, tt.want, res.StatusCode, "Host %s, GET %s: %s", tt.host, path, body)
			if tt.want == http.StatusMisdirectedRequest {
				assert.Contains(t, body, tt.host, "the refusal names the host")
				assert.Contains(t, body, "--allow-host", "and says what to do")
				assert.NotContains(t, body, "web1", "nothing of the data")
			}
		}
	}

	// With a token, the token is the guard: any name, with the token.
	const token = "0123456789abcdef-token"
	srv = serve(t, Options{Source: src, Token: token})
	res, body := getHost(t, srv, "/api/hosts", "dash.internal:8080", "Authorization", "Bearer "+token)
	assert.Equal(t, http.StatusOK, res.StatusCode, body)
	res, _ = getHost(t, srv, "/api/hosts", "dash.internal:8080")
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
}

func TestNewRefusesBadHostsAndShortTokens(t *testing.T) {
	for _, name := range []string{"", "http://dash.example.com", "dash.example.com/x", "a b", "user@host"} {
		_, err := New(Options{Source: &fakeSource{}, AllowedHosts: []string{"localhost", name}})
		assert.ErrorContains(t, err, "Options.AllowedHosts[1]", "allowed host %q", name)
	}
	_, err := New(Options{Source: &fakeSource{}, Token: "short-token-123"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "15 characters")
	assert.Contains(t, err.Error(), "at least 16")
	assert.NotContains(t, err.Error(), "short-token-123", "the error never shows the token")
	_, err = New(Options{Source: &fakeSource{}, Token: strings.Repeat("x", MinTokenLength)})
	assert.NoError(t, err)
}
