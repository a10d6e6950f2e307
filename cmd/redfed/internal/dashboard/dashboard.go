package dashboard

import (
	"context"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/redfed/federated"
	"github.com/redfed/federated/metrics"
	"github.com/redfed/federated/syncer"
)

// Source is what the dashboard reads. Fleet is the Source of a metrics store.
type Source interface {
	// Series returns the series, sorted by host and then by metric, whose
	// key changed at or after since. The dashboard keeps what it returns
	// for a few seconds (see listingFresh).
	Series(ctx context.Context, since time.Time) ([]metrics.Series, error)
	// Summarize returns at most maxPoints points of a series in [from,
	// to], sorted by time: every point when there are that few, else the
	// lowest and highest of each span of the range. It reads in pages, so
	// that its memory and its commands stay small whatever the range.
	Summarize(ctx context.Context, series metrics.Series, from, to time.Time, maxPoints int) (metrics.Summary, error)
	// LatestEach returns the newest point of each series, in one read.
	// With some servers failed, it returns the newest points of the
	// others with the error.
	LatestEach(ctx context.Context, series ...metrics.Series) ([]metrics.LatestResult, error)
	// Status returns the health of every server.
	Status() []federated.ServerStatus
	// AllServers returns the addresses of a node's servers, in
	// configuration order.
	AllServers(node string) ([]string, error)
}

// Fleet is the Source of a federation: its metrics store, and the health
// of the servers of the store's client.
type Fleet struct{ *metrics.Store }

// Status returns the health of every server of the store's client.
func (f Fleet) Status() []federated.ServerStatus { return f.Client().Status() }

// AllServers returns the addresses of a node's servers, in configuration
// order.
func (f Fleet) AllServers(node string) ([]string, error) { return f.Client().AllServers(node) }

var _ Source = Fleet{}

// Options configure the dashboard. Only Source is required; the zero value
// of every other field means its default.
type Options struct {
	// Source is where metrics and server health come from. Required.
	Source Source
	// Syncer, when set, returns the current stats of the syncer that runs
	// beside the dashboard, or nil when none runs. Default: no syncer
	// section.
	Syncer func() *syncer.Stats
	// LastCheck, when set, returns the report of the last replica check and
	// when it finished; ok is false while there has been none. Default: no
	// check section.
	LastCheck func() (report metrics.CheckReport, at time.Time, ok bool)
	// Token, when set, must come with every request: in the header
	// "Authorization: Bearer TOKEN", in a "token" query parameter, or in the
	// cookie TokenCookie. A page opened with ?token=TOKEN sets the cookie
	// and redirects to itself without the parameter, so the token leaves
	// the address bar and the page's script is authorized by the cookie.
	// Other requests get 401. It must be at least MinTokenLength
	// characters of printable ASCII without spaces, quotes, commas,
	// semicolons or backslashes. Default: no token.
	Token string
	// AllowedHosts are the names, besides the loopback ones (localhost,
	// 127.0.0.1, [::1]), that requests may give in their Host header when
	// there is no Token; a port after the name is ignored. Other names are
	// refused with 421, so that a web page the operator visits cannot read
	// the dashboard by pointing its own name at a loopback address (DNS
	// rebinding). With a Token every name is served: the token is the
	// guard. Default: loopback names only.
	AllowedHosts []string
	// MaxSeriesReads is how many /api/series reads run at once; more wait
	// for their turn, up to the request's time limit, so that a page of
	// many long ranges does not load the servers all at once. Default 4.
	MaxSeriesReads int
	// Routes are more handlers, by http.ServeMux pattern ("POST
	// /api/v1/write"), served behind the same Host and token checks as
	// the pages, with the same headers. A pattern that clashes with the
	// dashboard's own is an error. Default: none.
	Routes map[string]http.Handler
	// Logger receives failed reads of the Source. Default: slog.Default().
	Logger *slog.Logger
	// Now returns the present, for tests. Default: time.Now.
	Now func() time.Time
}

const (
	// HostsWindow is how far back the dashboard looks for hosts and
	// metrics: those not written to for longer are not listed.
	HostsWindow = 7 * 24 * time.Hour
	// DefaultRange is the range of a series read without from, to or range:
	// the last hour.
	DefaultRange = time.Hour
	// MaxRange is the longest range /api/series reads.
	MaxRange = 31 * 24 * time.Hour
	// DefaultMaxPoints is how many points /api/series returns at most when
	// max_points is not given: enough for a chart as wide as a screen.
	DefaultMaxPoints = 1000
	// MaxPoints is the largest max_points /api/series and /api/overview
	// take, and the most points of an overview's series all together. A
	// point takes at most 75 bytes of JSON, so that a reply holds at most
	// 750 KB of points, besides its names and warning.
	MaxPoints = 10_000
	// MinTokenLength is the shortest Options.Token New takes: a short one
	// can be guessed.
	MinTokenLength = 16
	// DefaultMaxSeriesReads is the default of Options.MaxSeriesReads.
	DefaultMaxSeriesReads = 4
	// TokenCookie is the cookie that carries Options.Token for the pages'
	// script.
	TokenCookie = "redfed_dashboard_token"

	// requestTimeout bounds the Source calls of one request.
	requestTimeout = 15 * time.Second
	// contentSecurityPolicy allows the dashboard's own script and style and
	// nothing else: no inline script, no other origin.
	contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; " +
		"img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

//go:embed assets
var assets embed.FS

// handler serves the dashboard. Its fields are set by New and only read
// afterwards.
type handler struct {
	opts         Options
	mux          *http.ServeMux
	pages        map[string]*template.Template // by page name: "index", "status"
	allowedHosts map[string]bool               // normalized Options.AllowedHosts
	routes       map[string]bool               // the patterns of Options.Routes, whose handlers may read a body
	seriesReads  chan struct{}                 // a slot for each series read under way
	rankings     chan struct{}                 // a slot for each overview ranking its hosts
	listings     listings                      // the last listing of the journals
}

// New returns the dashboard's handler. It fails when Options.Source is nil,
// when Options.Token is too short or holds a character it cannot carry, or
// when an Options.AllowedHosts entry is not a host name.
func New(opts Options) (http.Handler, error) {
	if opts.Source == nil {
		return nil, errors.New("dashboard: Options.Source is nil")
	}
	if err := ValidateToken(opts.Token); err != nil {
		return nil, fmt.Errorf("dashboard: Options.Token: %w", err)
	}
	allowed, err := allowedHosts(opts.AllowedHosts)
	if err != nil {
		return nil, err
	}
	if opts.MaxSeriesReads < 0 {
		return nil, fmt.Errorf("dashboard: Options.MaxSeriesReads %d: want 0 (the default, %d) or more", opts.MaxSeriesReads, DefaultMaxSeriesReads)
	}
	if opts.MaxSeriesReads == 0 {
		opts.MaxSeriesReads = DefaultMaxSeriesReads
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	h := &handler{opts: opts, mux: http.NewServeMux(), pages: make(map[string]*template.Template),
		allowedHosts: allowed, routes: make(map[string]bool), seriesReads: make(chan struct{}, opts.MaxSeriesReads),
		rankings: make(chan struct{}, rankings)}
	for _, name := range []string{"index", "status"} {
		t, err := template.New(name).Funcs(templateFuncs).ParseFS(assets, "assets/layout.html", "assets/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("dashboard: parse page %s: %w", name, err)
		}
		h.pages[name] = t
	}
	static, err := fs.Sub(assets, "assets/static")
	if err != nil {
		return nil, fmt.Errorf("dashboard: static assets: %w", err)
	}
	files := http.StripPrefix("/static/", http.FileServerFS(static))

	h.mux.HandleFunc("GET /{$}", h.indexPage)
	h.mux.HandleFunc("GET /status", h.statusPage)
	h.mux.HandleFunc("GET /static/{file}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
	h.mux.HandleFunc("GET /api/hosts", h.apiHosts)
	h.mux.HandleFunc("GET /api/metrics", h.apiMetrics)
	h.mux.HandleFunc("GET /api/series", h.apiSeries)
	h.mux.HandleFunc("GET /api/overview", h.apiOverview)
	h.mux.HandleFunc("GET /api/status", h.apiStatus)
	for pattern, route := range opts.Routes {
		if err := handle(h.mux, pattern, route); err != nil {
			return nil, err
		}
		h.routes[pattern] = true
	}
	return h, nil
}

// handle adds a route to mux, and turns the panic of a bad or clashing
// pattern into an error.
func handle(mux *http.ServeMux, pattern string, route http.Handler) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("dashboard: Options.Routes %q: %v", pattern, p)
		}
	}()
	mux.Handle(pattern, route)
	return nil
}

// ValidateToken refuses a token that is empty (no token: nothing to
// check), too short to resist guessing, or that a header, a URL or a cookie
// would mangle. Its errors say what is wrong but never show the token.
func ValidateToken(token string) error {
	if token == "" {
		return nil
	}
	for i := 0; i < len(token); i++ {
		if c := token[i]; c <= ' ' || c >= 0x7f || strings.IndexByte(`"',;\`, c) >= 0 {
			return fmt.Errorf("character %q at byte %d is not allowed: use printable ASCII without spaces, quotes, commas, semicolons or backslashes", c, i)
		}
	}
	if len(token) < MinTokenLength {
		return fmt.Errorf("%d characters is too short to resist guessing: want at least %d (openssl rand -hex 16 makes 32)", len(token), MinTokenLength)
	}
	return nil
}

// ServeHTTP sets the security headers, refuses a body the route does not
// take, checks the Host and the token, refuses a query it cannot read, and
// routes.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Content-Security-Policy", contentSecurityPolicy)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("X-Frame-Options", "DENY")
	if r.ContentLength != 0 && !h.takenByRoute(r) {
		cutBody(w, r)
		// Other methods get the mux's 405 or 404, on a connection that
		// closes once it is sent.
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			refuse(w, r, http.StatusBadRequest, errorReply{Error: "request body: not taken here; send the request without one"})
			return
		}
	}
	if h.opts.Token == "" && !h.hostAllowed(r.Host) {
		h.misdirected(w, r)
		return
	}
	viaQuery := false
	if h.opts.Token != "" {
		var ok bool
		if ok, viaQuery = h.authorized(r); !ok {
			h.unauthorized(w, r)
			return
		}
	}
	// The handlers read the query with r.URL.Query(), which drops the
	// pairs it cannot parse: from=%zz read as no from, and the default
	// range came back with 200.
	if e := checkQuery(r.URL.RawQuery); e != nil && !h.takenByRoute(r) {
		refuse(w, r, http.StatusBadRequest, errorReply{Error: e.Error(), Param: e.Param})
		return
	}
	if viaQuery && isPage(r) {
		h.keepToken(w, r)
		return
	}
	h.mux.ServeHTTP(w, r)
}

// authorized reports whether r carries the token, and whether it came in
// the query.
func (h *handler) authorized(r *http.Request) (ok, viaQuery bool) {
	if scheme, token, found := strings.Cut(r.Header.Get("Authorization"), " "); found &&
		strings.EqualFold(scheme, "Bearer") && h.tokenIs(strings.TrimSpace(token)) {
		return true, false
	}
	if r.URL.Query().Has("token") {
		return h.tokenIs(r.URL.Query().Get("token")), true
	}
	if c, err := r.Cookie(TokenCookie); err == nil && h.tokenIs(c.Value) {
		return true, false
	}
	return false, false
}

// tokenIs compares in constant time, so that response times do not leak
// how much of a guess was right.
func (h *handler) tokenIs(got string) bool {
	return subtle.ConstantTimeCompare([]byte(got), []byte(h.opts.Token)) == 1
}

// takenByRoute reports a request for one of Options.Routes, whose handlers
// read their own body and query. It asks the mux, which routes again in
// ServeHTTP: only for a request with a body or a query it cannot read.
func (h *handler) takenByRoute(r *http.Request) bool {
	_, pattern := h.mux.Handler(r)
	return h.routes[pattern]
}

func (h *handler) unauthorized(w http.ResponseWriter, r *http.Request) {
	cutBody(w, r)
	w.Header().Set("WWW-Authenticate", `Bearer realm="redfed dashboard"`)
	const msg = "token: missing or wrong; send the header \"Authorization: Bearer TOKEN\" or open the page with ?token=TOKEN"
	refuse(w, r, http.StatusUnauthorized, errorReply{Error: msg, Param: "token"})
}

// cutBody makes the reply to r the last of its connection, and ends the
// reading of what is left of r's body, if it has one. Go's server reads
// that body before it sends a reply that did not read it (and again
// before it closes the connection), so that a client that promises a body
// and never sends it held its connection and a goroutine for ever: 200
// such requests held 200 connections open 40 s later, with no token
// needed, since the Host and token checks answer without reading either.
func cutBody(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength == 0 {
		return
	}
	w.Header().Set("Connection", "close")
	// A ResponseWriter that cannot set deadlines (a recorder in a test)
	// has no connection to hold.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now())
}

// refuse answers r with code and e: as text to a page, as JSON to the API
// and the assets.
func refuse(w http.ResponseWriter, r *http.Request, code int, e errorReply) {
	if isPage(r) {
		http.Error(w, e.Error, code)
		return
	}
	writeJSON(w, code, e)
}

// keepToken puts the token of the query in a cookie and redirects to the
// same page without it. The Location is relative, so that it stays right
// when the handler is mounted under a prefix: "./" and the last segment of
// the path, escaped. Without the "./" and the escaping, /%5C%5Cevil.com
// was sent to \\evil.com, which a browser reads as //evil.com, another
// site, /https:evil.com to another site too, and /a%3Fb to a?b.
func (h *handler) keepToken(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name:     TokenCookie,
		Value:    h.opts.Token,
		Path:     "/",
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteStrictMode,
	})
	q := r.URL.Query()
	q.Del("token")
	loc := "./"
	if !strings.HasSuffix(r.URL.Path, "/") {
		loc = (&url.URL{Path: "./" + path.Base(r.URL.Path)}).EscapedPath()
	}
	if len(q) > 0 {
		loc += "?" + q.Encode()
	}
	w.Header().Set("Location", loc)
	w.WriteHeader(http.StatusSeeOther)
}

// isPage reports a request for an HTML page rather than the API or an
// asset.
func isPage(r *http.Request) bool {
	return !strings.HasPrefix(r.URL.Path, "/api/") && !strings.HasPrefix(r.URL.Path, "/static/")
}

// now returns the present by Options.Now.
func (h *handler) now() time.Time { return h.opts.Now() }

// errorReply is the body of every API error.
type errorReply struct {
	Error string `json:"error"`
	Param string `json:"param,omitempty"` // the query parameter at fault
}

// writeJSON writes v with the status code.
func writeJSON(w http.ResponseWriter, code int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		code = http.StatusInternalServerError
		body, _ = json.Marshal(errorReply{Error: "encode reply: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(body, '\n'))
}
