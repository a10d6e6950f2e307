package torture_test

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/faultproxy"
	"github.com/redfed/federated/internal/redistest"
)

// sid names a server: process group of host.
type sid struct{ host, group int }

func (s sid) String() string { return fmt.Sprintf("%c%d", 'a'+s.host, s.group) }

func (s sid) peer() sid { return sid{1 - s.host, s.group} }

func nodeName(group int) string { return "redis_" + strconv.Itoa(group+1) }

// groupOf returns the group of a node name.
func groupOf(node string) int {
	n, _ := strconv.Atoi(strings.TrimPrefix(node, "redis_"))
	return n - 1
}

// fleet is the federation under test. Every server has two proxies in front
// of it: the writers reach it through one, the syncers through the other,
// so that faults hit writes and replication apart. The test's own reads go
// straight to the servers.
type fleet struct {
	servers [hosts][groups]*redistest.Server
	wproxy  [hosts][groups]*faultproxy.Proxy
	sproxy  [hosts][groups]*faultproxy.Proxy
	direct  [hosts][groups]*redis.Client

	writerCfg, syncCfg, directCfg federated.Config
}

func newFleet(t *testing.T) *fleet {
	t.Helper()
	f := &fleet{}
	started := redistest.StartN(t, hosts*groups, redistest.Options{Args: []string{
		// A script that runs 100ms makes the server answer BUSY.
		"--busy-reply-threshold", "100",
		// A server restarted from a snapshot loads each key in 1ms,
		// answering LOADING meanwhile (see refuse).
		"--key-load-delay", "1000", "--loading-process-events-interval-bytes", "1024",
	}})
	opts := federated.Options{
		CommandTimeout:    commandTimeout,
		BaseRetryInterval: 100 * time.Millisecond,
		MaxRetryInterval:  time.Second,
		Logger:            slog.New(slog.DiscardHandler),
	}
	f.writerCfg = federated.Config{Nodes: map[string]federated.Node{}, Options: opts}
	f.syncCfg = federated.Config{Nodes: map[string]federated.Node{}, Options: opts}
	f.directCfg = federated.Config{Nodes: map[string]federated.Node{}, Options: opts}
	for g := range groups {
		var waddrs, saddrs, daddrs []string
		for h := range hosts {
			s := started[h*groups+g]
			f.servers[h][g] = s
			for _, p := range []**faultproxy.Proxy{&f.wproxy[h][g], &f.sproxy[h][g]} {
				var err error
				if *p, err = faultproxy.New(s.Addr()); err != nil {
					f.close(t)
					t.Fatal(err)
				}
			}
			f.direct[h][g] = redis.NewClient(&redis.Options{Addr: s.Addr(), DisableIdentity: true})
			waddrs = append(waddrs, f.wproxy[h][g].Addr())
			saddrs = append(saddrs, f.sproxy[h][g].Addr())
			daddrs = append(daddrs, s.Addr())
		}
		f.writerCfg.Nodes[nodeName(g)] = federated.Node{Addresses: waddrs}
		f.syncCfg.Nodes[nodeName(g)] = federated.Node{Addresses: saddrs}
		f.directCfg.Nodes[nodeName(g)] = federated.Node{Addresses: daddrs}
	}
	return f
}

// syncLocals returns the syncer-side addresses of a host's servers.
func (f *fleet) syncLocals(h int) []string {
	out := make([]string, groups)
	for g := range groups {
		out[g] = f.sproxy[h][g].Addr()
	}
	return out
}

// healAll clears every proxy fault and makes sure every server runs.
func (f *fleet) healAll(t *testing.T) {
	t.Helper()
	for h := range hosts {
		for g := range groups {
			f.wproxy[h][g].Heal()
			f.wproxy[h][g].DropNew(false)
			f.sproxy[h][g].Heal()
			if s := f.servers[h][g]; !s.Running() {
				t.Errorf("server %s was left down by a fault", sid{h, g})
				if err := s.Restart(); err != nil {
					t.Errorf("restarting %s: %v", sid{h, g}, err)
				}
			}
		}
	}
}

func (f *fleet) close(t *testing.T) {
	for h := range hosts {
		for g := range groups {
			for _, p := range []*faultproxy.Proxy{f.wproxy[h][g], f.sproxy[h][g]} {
				if p != nil {
					if err := p.Close(); err != nil {
						t.Errorf("closing a proxy: %v", err)
					}
				}
			}
			if rc := f.direct[h][g]; rc != nil {
				_ = rc.Close()
			}
		}
	}
}

func newClient(t *testing.T, cfg federated.Config) *federated.Client {
	t.Helper()
	c, err := federated.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
