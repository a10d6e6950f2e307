package dashboard

import (
	"errors"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewValidates(t *testing.T) {
	_, err := New(Options{})
	assert.ErrorContains(t, err, "Options.Source")
	for _, token := range []string{"a b", "a;b", `a"b`, "a\nb", "é"} {
		_, err := New(Options{Source: &fakeSource{}, Token: token})
		assert.ErrorContains(t, err, "Options.Token", "token %q", token)
	}
	h, err := New(Options{Source: &fakeSource{}, Token: "A-z_0.9~!A-z_0.9~!"})
	require.NoError(t, err)
	assert.NotNil(t, h)
}

func TestIndexPage(t *testing.T) {
	f := newFixture(t, 3)
	srv := serve(t, Options{Source: f.fleet()})

	res, body := get(t, srv, "/")
	require.Equal(t, http.StatusOK, res.StatusCode, body)
	assert.Equal(t, "text/html; charset=utf-8", res.Header.Get("Content-Type"))
	assert.Contains(t, res.Header.Get("Content-Security-Policy"), "script-src 'self'")
	assert.Contains(t, body, `<meta name="viewport"`)
	assert.Len(t, regexp.MustCompile(`<svg [^>]*data-host=`).FindAllString(body, -1), len(f.data), "one chart per series")
	metrics := make(map[string]bool)
	for _, s := range f.data {
		metrics[s.metric] = true
	}
	assert.Equal(t, len(metrics), strings.Count(body, `data-top="5"`), "an overview chart per metric, of the 5 busiest hosts")
	assert.Contains(t, body, `data-metric="mem.used_mb" data-unit="bytes" data-scale="1048576"`, "the unit of a metric in MB")
	assert.Equal(t, 1, strings.Count(body, "<script"), "the page's one script, no other")
	assert.NotContains(t, body, "<img", "the host named as an img tag")
	for _, s := range f.data {
		assert.Contains(t, body, `data-host="`+html.EscapeString(s.host)+`" data-metric="`+html.EscapeString(s.metric)+`"`)
	}
	assert.Contains(t, body, `<span class="name">&lt;script&gt;alert(1)&lt;/script&gt;</span>`)
	assert.Contains(t, body, `<h2>&#34;&gt;&lt;img src=x onerror=alert(2)&gt;</h2>`)
	assert.Contains(t, body, `href="?host=%22%3e%3cimg%20src%3dx%20onerror%3dalert%282%29%3e&amp;range=1h"`)

	// One host, another range.
	_, body = get(t, srv, "/?host=web1.sfo&range=6h")
	assert.Equal(t, 2, strings.Count(body, `<svg class="plot"`), "charts of web1.sfo, and no overview")
	assert.Contains(t, body, `data-range="6h"`)
	assert.Contains(t, body, `<a class="range active" data-range="6h"`)

	// One metric across the busiest hosts.
	_, body = get(t, srv, "/?metric=cpu.user")
	assert.Equal(t, 1, strings.Count(body, `<svg class="plot"`), "the chart of cpu.user")
	assert.Contains(t, body, `data-metric="cpu.user" data-top="12"`)
	assert.Contains(t, body, `<a class="range" data-range="6h" href="?metric=cpu.user&amp;range=6h">`)

	for bad, param := range map[string]string{
		"/?range=2h": "range", "/?host=": "host", "/?host=a:b": "host", "/?metric=": "metric", "/?metric=a&host=b": "metric",
		// Dropped once: the whole fleet's page, or the default range.
		"/?host=%zz": "host", "/?range=%zz": "range", "/?host=web1.sfo;range=6h": "host",
		"/?host=web1.sfo&host=web2.sfo": "host", "/?range=1h&range=6h": "range", "/?metric=cpu.user&metric=req.rate": "metric",
	} {
		res, body := get(t, srv, bad)
		assert.Equal(t, http.StatusBadRequest, res.StatusCode, "GET %s: %s", bad, body)
		assert.True(t, strings.HasPrefix(body, param+": "), "GET %s: the error names %s: %s", bad, param, body)
	}
}

func TestIndexPageManyHosts(t *testing.T) {
	src := &fakeSource{metrics: []string{"cpu"}}
	for i := range maxInlineHosts + 1 {
		src.hosts = append(src.hosts, "host"+string(rune('a'+i)))
	}
	srv := serve(t, Options{Source: src})
	_, body := get(t, srv, "/")
	assert.Contains(t, body, "choose one above")
	assert.NotRegexp(t, `<svg [^>]*data-host=`, body, "charts of single hosts")
	assert.Equal(t, 1, strings.Count(body, `<svg class="plot"`), "the overview chart of the one metric")
	assert.Contains(t, body, `data-metric="cpu" data-top="5"`)
	_, body = get(t, srv, "/?host=hostb")
	assert.Equal(t, 1, strings.Count(body, `<svg class="plot"`))
}

func TestStatusPage(t *testing.T) {
	f := newFixture(t, 3)
	srv := serve(t, Options{Source: f.fleet(), Syncer: testSyncerStats, LastCheck: testCheck(f.base)})
	killed := f.markDown(t, 2)

	res, body := get(t, srv, "/status")
	require.Equal(t, http.StatusOK, res.StatusCode, body)
	assert.Regexp(t, `<tr class="down( current)?" data-address="`+regexp.QuoteMeta(killed)+`">`, body)
	assert.Equal(t, 2, strings.Count(body, `<tr class="up`), "servers up")
	assert.Contains(t, body, "<td>127.0.0.1:1</td><td>127.0.0.1:3</td>", "syncer peer")
	assert.Contains(t, body, `<td class="num">40 ms</td>`, "p99 of a peer")
	assert.Contains(t, body, "Not OK: 120 keys compared, 2 divergent", "check summary")

	// Without a syncer or a check.
	srv = serve(t, Options{Source: f.fleet()})
	_, body = get(t, srv, "/status")
	assert.Contains(t, body, "No syncer runs here.")
	assert.Contains(t, body, "No check has run yet.")
}

func TestStaticAssets(t *testing.T) {
	srv := serve(t, Options{Source: &fakeSource{}})
	for file, ctype := range map[string]string{
		"/static/dashboard.js":  "text/javascript; charset=utf-8",
		"/static/dashboard.css": "text/css; charset=utf-8",
	} {
		res, body := get(t, srv, file)
		assert.Equal(t, http.StatusOK, res.StatusCode, file)
		assert.Equal(t, ctype, res.Header.Get("Content-Type"), file)
		// The SVG namespace is a name, not something loaded.
		offsite := strings.Contains(strings.ReplaceAll(body, `"http://www.w3.org/2000/svg"`, ""), "://")
		assert.False(t, offsite, "%s names another site", file)
	}
	for _, u := range []string{"/static/", "/static/nope.js", "/nope"} {
		res, _ := get(t, srv, u)
		assert.Equal(t, http.StatusNotFound, res.StatusCode, u)
	}
}

func TestToken(t *testing.T) {
	const token = "s3cret-T0ken-0123"
	srv := serve(t, Options{Source: &fakeSource{hosts: []string{"web1"}}, Token: token})
	tests := []struct {
		name   string
		url    string
		header []string
		want   int
	}{
		{"none", "/api/hosts", nil, http.StatusUnauthorized},
		{"page without", "/", nil, http.StatusUnauthorized},
		{"asset without", "/static/dashboard.js", nil, http.StatusUnauthorized},
		{"wrong bearer", "/api/hosts", []string{"Authorization", "Bearer nope"}, http.StatusUnauthorized},
		{"other scheme", "/api/hosts", []string{"Authorization", "Basic " + token}, http.StatusUnauthorized},
		{"bearer", "/api/hosts", []string{"Authorization", "Bearer " + token}, http.StatusOK},
		{"bearer, any case", "/api/hosts", []string{"Authorization", "bearer " + token}, http.StatusOK},
		{"query", "/api/hosts?token=" + token, nil, http.StatusOK},
		{"wrong query", "/api/hosts?token=" + token + "x", nil, http.StatusUnauthorized},
		{"cookie", "/api/hosts", []string{"Cookie", TokenCookie + "=" + token}, http.StatusOK},
		{"wrong cookie", "/", []string{"Cookie", TokenCookie + "=x"}, http.StatusUnauthorized},
		{"page with cookie", "/status", []string{"Cookie", TokenCookie + "=" + token}, http.StatusOK},
		{"asset with cookie", "/static/dashboard.css", []string{"Cookie", TokenCookie + "=" + token}, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, body := get(t, srv, tt.url, tt.header...)
			assert.Equal(t, tt.want, res.StatusCode, "GET %s; body %s", tt.url, body)
			if tt.want == http.StatusUnauthorized {
				assert.Contains(t, body, "token")
				assert.NotEmpty(t, res.Header.Get("WWW-Authenticate"))
			}
		})
	}

	// A page opened with ?token= keeps it in a cookie and drops it from the
	// address.
	for u, want := range map[string]string{
		"/?token=" + token + "&range=6h": "./?range=6h",
		"/status?token=" + token:         "./status",
		// Once sent to \\evil.com, which a browser reads as //evil.com,
		// to https:evil.com, another site too, and to a?b.
		"/%5C%5Cevil.com?token=" + token: "./%5C%5Cevil.com",
		"/https:evil.com?token=" + token: "./https:evil.com",
		"//evil.com?token=" + token:      "./evil.com",
		"/a%3Fb?token=" + token:          "./a%3Fb",
		"/a%23b?token=" + token:          "./a%23b",
	} {
		res, _ := get(t, srv, u)
		require.Equal(t, http.StatusSeeOther, res.StatusCode, u)
		assert.Equal(t, want, res.Header.Get("Location"), u)
		loc, err := res.Request.URL.Parse(res.Header.Get("Location"))
		require.NoError(t, err, u)
		assert.Equal(t, res.Request.URL.Host, loc.Host, "%s: redirected to another site", u)
		assert.NotRegexp(t, `^(//|/\\|\\)`, res.Header.Get("Location"), u)
		cookies := res.Cookies()
		require.Len(t, cookies, 1, u)
		assert.Equal(t, TokenCookie, cookies[0].Name)
		assert.Equal(t, token, cookies[0].Value)
		assert.True(t, cookies[0].HttpOnly)
		assert.Equal(t, http.SameSiteStrictMode, cookies[0].SameSite)
	}
	// A query that cannot be read is refused, not redirected without the
	// part it could not read.
	res, body := get(t, srv, "/?token="+token+"&host=%zz")
	assert.Equal(t, http.StatusBadRequest, res.StatusCode, body)
	assert.Empty(t, res.Header.Get("Location"))
	// Mounted under a prefix, the redirect stays relative.
	h, err := New(Options{Source: &fakeSource{}, Token: token})
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("/dash/", http.StripPrefix("/dash", h))
	req, err := http.NewRequest(http.MethodGet, "/dash/status?"+url.Values{"token": {token}}.Encode(), nil)
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	assert.Equal(t, "./status", rec.Header().Get("Location"))
}

// Routes are served behind the same checks as the pages: the token, or
// without one the Host.
func TestRoutes(t *testing.T) {
	const token = "s3cret-T0ken-0123"
	routes := map[string]http.Handler{"GET /api/v1/extra": http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("extra"))
	})}
	withToken := serve(t, Options{Source: &fakeSource{}, Token: token, Routes: routes})
	res, body := get(t, withToken, "/api/v1/extra")
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode, body)
	res, body = get(t, withToken, "/api/v1/extra", "Authorization", "Bearer "+token)
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "extra", body)
	assert.NotEmpty(t, res.Header.Get("Content-Security-Policy"), "the dashboard's headers")

	open := serve(t, Options{Source: &fakeSource{}, Routes: routes})
	res, _ = get(t, open, "/api/v1/extra")
	assert.Equal(t, http.StatusOK, res.StatusCode)
	res, _ = getHost(t, open, "/api/v1/extra", "evil.example")
	assert.Equal(t, http.StatusMisdirectedRequest, res.StatusCode)

	_, err := New(Options{Source: &fakeSource{}, Routes: map[string]http.Handler{"GET /api/hosts": routes["GET /api/v1/extra"]}})
	assert.ErrorContains(t, err, `Options.Routes "GET /api/hosts"`)
}

// A metric no series can have is refused, naming the parameter, before the
// page repeats it: a metric of 900,000 bytes made a page of 9 MB.
func TestIndexPageRefusesBadMetric(t *testing.T) {
	srv := serve(t, Options{Source: &fakeSource{hosts: []string{"web1", "web2"}, metrics: []string{"cpu"}}})
	for name, value := range map[string]string{
		"NUL":           "a\x00b",
		"U+2028":        "a\u2028b",
		"600 bytes":     strings.Repeat("m", 600),
		"900,000 bytes": strings.Repeat("m", 900_000),
	} {
		t.Run(name, func(t *testing.T) {
			res, body := get(t, srv, "/?metric="+url.QueryEscape(value))
			assert.Equal(t, http.StatusBadRequest, res.StatusCode)
			assert.True(t, strings.HasPrefix(body, "metric: "), "the error names the parameter: %.200q", body)
			assert.Less(t, len(body), 2000, "bytes of the reply: the error quotes at most 1 KiB of the name")
		})
	}
}

// A server that is down is said once on the metrics page, in the page's
// warning that the script takes down once the server is back, not again
// in each host's section, where it stayed: with 4 hosts its address was
// on the page 6 times.
func TestIndexPageSaysDownServerOnce(t *testing.T) {
	f := newFixture(t, 3)
	srv := serve(t, Options{Source: f.fleet()})
	addr := f.markDown(t, 0)
	res, body := get(t, srv, "/")
	require.Equal(t, http.StatusOK, res.StatusCode, body)
	listing := regexp.MustCompile(` data-listing="[^"]*"`)
	require.Contains(t, listing.FindString(body), addr, "the script's copy of the warning, which it manages")
	shown := listing.ReplaceAllString(body, "")
	assert.Equal(t, 1, strings.Count(shown, addr), "times the page says the server")
	assert.Regexp(t, `<div id="page-warning"[^>]*><ul><li>[^<]*`+regexp.QuoteMeta(addr), body, "said in the page's warning")
	assert.Zero(t, strings.Count(shown, `<p class="warning">`), "warnings in hosts' sections")

	// A host asked for whose metrics could not be listed (its server is
	// the one down) says so, and leaves the why to the page's warning.
	failure := errors.New("federated: node redis_2, server 10.0.0.2:6379: federated: server down")
	srv = serve(t, Options{Source: &fakeSource{hosts: []string{"web1", "web2"}, metrics: []string{"cpu"}, err: failure}})
	_, body = get(t, srv, "/?host=web3")
	shown = listing.ReplaceAllString(body, "")
	assert.Equal(t, 1, strings.Count(shown, "10.0.0.2:6379"), "times the page says the server")
	assert.Equal(t, 1, strings.Count(body, "Its metrics could not be listed when the page loaded."))
}
