// Package dashboard serves a web dashboard of a federation's metrics and
// health: server-rendered HTML pages, a small script that draws each series
// as an SVG line chart and keeps it live, and the JSON API the script reads.
// Every asset is embedded, so the dashboard works offline, with no CDN.
//
// The metrics page opens on an overview: a chart per metric comparing the
// hosts whose latest value of it is highest (/api/overview), each in its
// own colour with a legend, and, for a fleet of a few hosts, every host's
// charts. Axes have gridlines and values in the unit the metric's name
// gives (mem.used_mb in MiB or GiB, a latency in ms, a percentage); a
// pointer over a chart shows the time and each series' value of the
// nearest point. A server that is down is said once for the whole page,
// with the time it went down, however many charts lack its points, and
// the warning goes once it is back. The status page lists the servers by
// node, and every error it shows carries the time it happened and goes
// once the condition clears.
//
// New returns an http.Handler that answers at its root. To mount it under a
// prefix, strip the prefix and keep the trailing slash:
//
//	mux.Handle("/dashboard/", http.StripPrefix("/dashboard", h))
//
// The pages link to each other and to the API with relative URLs, so they
// work wherever the handler is mounted.
//
// Security: names of hosts and metrics come from whoever writes metrics, so
// they are never trusted as markup. html/template escapes them on the server
// and the script inserts them with textContent; a Content-Security-Policy
// that allows only the dashboard's own script and style is sent with every
// page as a second line of defence. A character of a name that shows
// nothing (a combining grapheme joiner, a Hangul filler, a variation
// selector after ASCII) is shown as "⟨U+XXXX⟩", so that two names that
// differ by it do not look the same. With Options.Token set, every request
// must carry the token (see Options.Token). Without one, a request must
// name the dashboard by a loopback name (localhost, 127.0.0.1, [::1]) or
// one of Options.AllowedHosts in its Host header, else it gets 421: a web
// page that points its own name at the loopback address (DNS rebinding)
// reads nothing. Nothing the dashboard shows holds a password: the Source
// does not expose any.
//
// Load: a series is read with Source.Summarize, in pages and cut down to at
// most max_points points (DefaultMaxPoints, at most MaxPoints) as it is
// read, and an overview's series share MaxPoints between them, so that
// neither the servers, the reply (750 KB of points at most) nor the
// process's memory grow with the range; at most Options.MaxSeriesReads
// series reads run at once, the others wait their turn. An overview ranks
// the hosts listed with its metric by one read of their newest points
// (Source.LatestEach, a round trip to each server), at most 8 overviews at
// once for all requests, and its page's script ranks again only once a
// minute, asking for the same hosts in between. A read that runs out of time
// fails its chart, and does not mark a server down. The hosts and their
// metrics come from one read of every journal (Source.Series), kept for 10
// seconds (1 after a failure) and made once for all the requests that wait
// for it: a host or a metric new since shows that much later.
//
// Concurrency: the handler is safe for concurrent use; each request reads
// the Source afresh but for that listing, and keeps no other state between
// requests than the counts of reads under way.
//
// Failure behaviour: a bad query parameter gets a 400 whose JSON error names
// the parameter, as does a name the library refuses (federated.ErrBadHost,
// ErrBadMetric, ErrBadTimestamp), a parameter given twice where one is taken
// (host= may come several times to /api/overview only), and a pair of the
// query that does not parse (a bad %-escape, a ';'), named when its name can
// be read. A request with a body, which only Options.Routes take, is
// answered at once, unread, and its connection closed. When the Source fails
// and returns nothing the API answers 502 with the error; when some servers
// failed and the others answered, it answers 200 with what they returned and
// the error in the "warning" field, so that one dead server does not blank
// the dashboard.
package dashboard
