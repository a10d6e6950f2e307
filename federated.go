package federated

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/redfed/federated/internal/journal"
	"github.com/redfed/federated/internal/metric"
	"github.com/redfed/federated/internal/ring"
)

// Client routes commands over a federation of Redis servers. It is safe for
// concurrent use by many goroutines. Build one with New and release it with
// Close.
//
// A Client is a redis.UniversalClient: every command of go-redis's typed
// API, Do and Process, pipelines and transactions, each sent to the node of
// its keys with the client's failover. The rules:
//
//   - A command, transaction or Watch whose keys are on two nodes fails
//     with ErrCrossNode before anything is sent; a pipeline may span
//     nodes, each node's share sent at once. Options.HashTags places keys
//     by their {tag}, but metric keys, which are placed whole; Group
//     places every key by a name.
//   - A command that names no key fails with ErrKeyless, except PING,
//     FLUSHALL, FLUSHDB and SCRIPT and FUNCTION LOAD, EXISTS, FLUSH (and
//     FUNCTION DELETE, RESTORE), which go to every server and answer with
//     the first server's reply (SCRIPT EXISTS: true where every server has
//     the script). SCAN walks every node; in a pipeline, a transaction
//     or a chain, which go to one server each, it fails with ErrKeyless:
//     send it alone. Through a Group a keyless command goes to the
//     group's node.
//   - MULTI, EXEC, DISCARD, WATCH and UNWATCH sent alone fail with
//     ErrTxCommand: use TxPipelined or Watch.
//   - PUBLISH places a channel as a key, and so do Subscribe, PSubscribe
//     and SSubscribe; SUBSCRIBE sent with Do fails with ErrKeyless.
//   - A blocking command waits its time without counting against its
//     server; sent raw by Do, a wait over half the read timeout is refused.
type Client struct {
	// cmdable is the typed go-redis API of router: every command routed
	// by its keys (see route.go).
	cmdable
	router     *redis.Client
	routerSubs subscriptions // the PubSubs made on router (none of them connects)

	specs    keySpecs    // where commands' keys are, learnt from the servers
	queryAll atomic.Bool // Options.QueryAll, or as SetQueryAll last set it
	// waitsEnd is the latest time, Unix nanoseconds, at which a blocking
	// command of a finite wait sent so far may still be under way: the
	// clients of servers that leave are closed after it (see closeLater).
	waitsEnd atomic.Int64

	// hooksMu guards extraHooks; it is taken after topoMu and after a
	// server's mutex, never before them.
	hooksMu    sync.Mutex
	extraHooks []func(addr string) redis.Hook // added by AddServerHook, for every server's client

	opts Options      // filled with defaults; never changed after New
	keys journal.Keys // the keys beside the journal, on every server

	topo   atomic.Pointer[topology] // swapped whole by AddNode, RemoveNode, ReplaceNode and SetNodes
	topoMu sync.Mutex               // serializes the changes of topo, AddServerHook and Close's last read

	registry *Registry // that handed the client out; nil for a client from New
	tag      string    // the tag it was handed out under
	refs     int       // Shared references not yet closed; guarded by registry.mu

	lifeMu sync.Mutex     // guards closed transitions and wg.Add
	closed atomic.Bool    // set once by Close
	done   chan struct{}  // closed by Close: stops every background loop
	wg     sync.WaitGroup // background loops (down-server checks, senders)

	senders senderPool // the goroutines that send flights' shares
}

// topology is an immutable snapshot of the federation.
type topology struct {
	version uint64 // counts the changes: 0 for New's, then one more each
	ring    Ring
	nodes   map[string]*node
	servers map[string]*server // by address

	// indexed and byIndex spare routing a lookup by node name when the
	// ring can answer with an index into its sorted nodes.
	indexed ring.Indexed
	byIndex []*node
}

// setRing installs r, and its index when it has one.
func (t *topology) setRing(r Ring) {
	t.ring = r
	if ir, ok := r.(ring.Indexed); ok {
		names := ir.Nodes()
		t.indexed, t.byIndex = ir, make([]*node, len(names))
		for i, name := range names {
			t.byIndex[i] = t.nodes[name]
		}
	}
}

// route returns the node that owns a hash key. A ring of Options.NewRing
// may answer with a name that is not a node: that is an error wrapping
// ErrUnknownNode, not a nil node for the caller to send to.
func (t *topology) route(hashKey string) (*node, error) {
	if t.indexed != nil {
		return t.byIndex[t.indexed.LocateIndex(hashKey)], nil
	}
	name := t.ring.Locate(hashKey)
	n, ok := t.nodes[name]
	if !ok {
		return nil, fmt.Errorf("%w: Options.NewRing placed key %q on %q, which is not a node", ErrUnknownNode, hashKey, name)
	}
	return n, nil
}

// node is a named slot on the ring and its servers.
type node struct {
	name    string
	servers []*server    // in configuration order
	current atomic.Int32 // index into servers of the server commands go to
}

// New validates the configuration, copies it, and returns a client. It does
// not connect: connections are made on first use. With Options.TLS and no
// Options.TLSConfig, it reads the TLS files and builds TLSConfig from them.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.clone()
	c := &Client{
		opts: cfg.Options.withDefaults(),
		done: make(chan struct{}),
	}
	if c.opts.TLSConfig == nil && c.opts.TLS != nil {
		tc, err := c.opts.TLS.tlsConfig()
		if err != nil {
			return nil, err
		}
		c.opts.TLSConfig = tc
	}
	if cfg.Options.Logger != nil {
		redis.SetLogger(goRedisLog{cfg.Options.Logger})
	}
	c.queryAll.Store(c.opts.QueryAll)
	c.router = c.newRouter("", false)
	c.cmdable = c.router
	c.keys = journal.KeysOf(c.opts.Metrics.Journal)

	topo := &topology{nodes: make(map[string]*node), servers: make(map[string]*server)}
	for name, n := range cfg.Nodes {
		nd := c.newNode(name, n)
		topo.nodes[name] = nd
		for _, s := range nd.servers {
			topo.servers[s.addr] = s
		}
	}
	r, err := newRing(&c.opts, slices.Collect(maps.Keys(topo.nodes)))
	if err != nil {
		c.closeServers(topo.servers)
		_ = c.router.Close()
		return nil, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	topo.setRing(r)
	c.topo.Store(topo)
	if !c.opts.NoHealthCheck && c.addLoop() {
		go c.heartbeat()
	}
	return c, nil
}

// newNode builds a node and its servers. A replica group starts on a server
// chosen at random, as the Perl module does, so that clients spread over the
// group.
func (c *Client) newNode(name string, n Node) *node {
	return c.nodeKeeping(name, n, nil)
}

// redisOptions are the go-redis options of every server's client. go-redis's
// own retries are off: the client decides where a failed command goes next.
// Its separate pool for pipelines is off too, so that PoolSize bounds every
// connection to a server, pipelines' included.
func (c *Client) redisOptions(addr string) *redis.Options {
	o := c.opts
	idle := o.IdleTimeout
	if idle == 0 {
		idle = -1 // go-redis: no idle limit
	}
	return &redis.Options{
		Addr:                     addr,
		Username:                 o.Username,
		Password:                 o.Password,
		TLSConfig:                o.TLSConfig,
		DialTimeout:              o.DialTimeout,
		Dialer:                   guardedDialer(o.DialTimeout, o.TLSConfig),
		ReadTimeout:              o.ReadTimeout,
		WriteTimeout:             o.WriteTimeout,
		ContextTimeoutEnabled:    true,
		PoolSize:                 o.PoolSize,
		PipelinePoolSize:         -1,
		ConnMaxIdleTime:          idle,
		MaxRetries:               -1,
		DialerRetries:            1,
		DisableIdentity:          true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	}
}

// Close closes every connection and stops the background checks, waiting
// for them and for pipelines under way to end: for a second at most, after
// which the connections of those still under way (on a server that stopped
// answering, which would hold them for the command timeout) are closed
// under them. Calls made after Close fail with ErrClosed, and so does a
// command under way when it began that fails for lack of its connection. Close of a client from New is
// idempotent. A client from Shared closes when every Shared call has been
// matched by a Close: each Close gives back one call's reference, whoever
// calls it, so a holder that closes twice closes the client under another
// holder.
func (c *Client) Close() error {
	if c.registry != nil && !c.release() {
		return nil
	}
	c.lifeMu.Lock()
	if c.closed.Load() {
		c.lifeMu.Unlock()
		return nil
	}
	c.closed.Store(true)
	close(c.done)
	c.lifeMu.Unlock()

	ended := make(chan struct{})
	go func() {
		c.wg.Wait()
		close(ended)
	}()
	grace := time.NewTimer(closeGrace)
	defer grace.Stop()
	select {
	case <-ended:
	case <-grace.C:
	}
	defer func() { <-ended }() // the loops and flights end once their connections are closed
	c.routerSubs.closeAll()
	_ = c.router.Close() // it holds no connection
	// An AddNode, ReplaceNode or SetNodes under way stores its servers
	// first, or sees the client closed.
	c.topoMu.Lock()
	servers := c.topo.Load().servers
	c.topoMu.Unlock()
	return c.closeServers(servers)
}

// closeGrace is how long Close waits for the background checks and the
// pipelines under way to end before it closes their connections: a check
// or a pipeline waiting on a server that stopped answering (SIGSTOP, a
// host that froze) held Close for a whole command timeout, 4.4 s of 5.
var closeGrace = time.Second

func (c *Client) closeServers(servers map[string]*server) error {
	var errs []error
	for _, s := range servers {
		if err := s.close(); err != nil {
			errs = append(errs, fmt.Errorf("federated: closing %s: %w", s.addr, err))
		}
	}
	return errors.Join(errs...)
}

// TopologyVersion counts the changes of the federation's nodes (AddNode,
// RemoveNode, ReplaceNode, SetNodes; one that sets the nodes the client
// has changes nothing) since New, so that a layer above the client
// that caches where keys go (a metrics Recorder) knows when to route them
// again.
func (c *Client) TopologyVersion() uint64 { return c.topo.Load().version }

// Done returns a channel closed when Close begins, so that a layer above
// the client that runs goroutines of its own stops them with it.
func (c *Client) Done() <-chan struct{} { return c.done }

// Options returns the client's options, with defaults filled in.
func (c *Client) Options() Options { return c.opts }

// Nodes returns the names of the nodes, sorted.
func (c *Client) Nodes() []string {
	return slices.Sorted(maps.Keys(c.topo.Load().nodes))
}

// Servers returns the address of every server of the federation, sorted.
func (c *Client) Servers() []string {
	return c.topo.Load().addrs()
}

// names returns the names of the topology's nodes, sorted.
func (t *topology) names() []string { return slices.Sorted(maps.Keys(t.nodes)) }

// addrs returns the addresses of the topology's servers, sorted.
func (t *topology) addrs() []string { return slices.Sorted(maps.Keys(t.servers)) }

// AllServers returns the addresses of a node's servers, in configuration
// order.
func (c *Client) AllServers(nodeName string) ([]string, error) {
	n, err := c.topo.Load().node(nodeName)
	if err != nil {
		return nil, err
	}
	return n.addrs(), nil
}

// KeyToNode returns the name of the node that owns key. With the HashTags
// option, a key's {tag} is what is hashed, but for a metric key (one whose
// text before its first ':' is a period, "2026-11-25" or "2026-11-25T13"),
// which is hashed whole. A key group's node is Group(name).Node(): its
// name is hashed as it is, braces and all.
func (c *Client) KeyToNode(key string) string {
	return c.topo.Load().ring.Locate(c.hashKey("", key))
}

// NodeToServer returns the address of the server that a node's commands go
// to now: its current server, or the next up server of its group when the
// current one is down. It fails with ErrServerDown when every server of the
// node is down.
func (c *Client) NodeToServer(nodeName string) (string, error) {
	n, err := c.topo.Load().node(nodeName)
	if err != nil {
		return "", err
	}
	s, err := c.currentServer(n)
	if err != nil {
		return "", err
	}
	return s.addr, nil
}

// ServerClient returns a go-redis client of one server, for commands that
// address a server rather than a key (INFO, SCAN, scripts loading). It
// sends its commands and pipelines through the server's current
// connections, with health tracking as for routed commands, and keeps
// working after the server is marked down and comes back up (a recovered
// server gets fresh connections). Once the server leaves the federation
// (RemoveNode, a ReplaceNode that leaves it out, a SetNodes that moves it
// to a node of another name) its commands fail
// with ErrUnknownNode, and after Close with ErrClosed: call ServerClient
// again for the server's client of now. It holds no connection of its
// own, so Conn, Watch and Subscribe on it fail: use the Client's; and
// since the connections it sends through are those of the server's routed
// commands, so do the commands that would change one of them (SELECT,
// CLIENT REPLY, CLIENT TRACKING, SUBSCRIBE, HELLO, RESET, READONLY, ...),
// alone or in a pipeline. It is owned by the federation: do not close it.
func (c *Client) ServerClient(addr string) (*redis.Client, error) {
	s, err := c.topo.Load().server(addr)
	if err != nil {
		return nil, err
	}
	return s.handle, nil
}

// AddNode adds a node to the federation at run time. Keys that hash to it
// move to it; other keys stay where they are. It is safe while other
// goroutines send commands. It refuses a node that Config.Validate would,
// and, like Validate, no error shows the password.
func (c *Client) AddNode(name string, n Node) error {
	c.topoMu.Lock()
	defer c.topoMu.Unlock()
	if c.closed.Load() { // under topoMu, so Close closes what it adds
		return ErrClosed
	}
	old := c.topo.Load()
	if _, dup := old.nodes[name]; dup {
		// The name may hold the password, as in a configuration.
		v := validator{}.withSecret(c.opts.Password)
		return v.failAt(fieldPath{"nodes", name}, 0, "node already exists")
	}
	if err := c.checkNode(old, name, n); err != nil {
		return err
	}

	nd := c.newNode(name, n)
	next := old.successor()
	next.nodes[name] = nd
	for _, s := range nd.servers {
		next.servers[s.addr] = s
	}
	r, err := newRing(&c.opts, slices.Collect(maps.Keys(next.nodes)))
	if err != nil {
		for _, s := range nd.servers {
			_ = s.close()
		}
		return fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	next.setRing(r)
	c.topo.Store(next)
	c.followKeys(old, next)
	c.opts.Logger.Info("federated: node added", "node", name, "servers", n.Servers())
	return nil
}

// checkNode refuses a node n named name that Config.Validate would refuse
// beside the nodes of t other than name itself, without showing the
// password.
func (c *Client) checkNode(t *topology, name string, n Node) error {
	// The name or an address may hold the password, as in a configuration.
	v := validator{}.withSecret(c.opts.Password)
	owner := make(serverOwners, len(t.servers))
	for addr, s := range t.servers {
		if s.node == name {
			continue
		}
		canonical, _ := canonicalAddr(addr) // validated when it was added
		owner[canonical] = serverOwner{node: s.node, addr: addr}
	}
	if err := v.finish(v.node(name, n, owner), nil); err != nil {
		return err
	}
	if copies := c.opts.Metrics.Copies; len(n.Servers()) < copies {
		return v.failAt(fieldPath{"nodes", name}, 0, "%s, but options.metrics.copies asks %d copies of every metric write",
			serverCount(len(n.Servers())), copies)
	}
	return nil
}

// RemoveNode removes a node from the federation at run time. Its keys move
// to the other nodes; other keys stay where they are. Commands already under
// way on the node's servers finish there: its connections are closed after
// the command timeout, or once every blocking command under way may have
// ended (a BLPOP's wait, plus the command timeout), whichever is later. A
// wait forever, and a subscription, on them ends a command timeout after
// the change, with an error.
func (c *Client) RemoveNode(name string) error {
	if c.closed.Load() {
		return ErrClosed
	}
	c.topoMu.Lock()
	defer c.topoMu.Unlock()
	old := c.topo.Load()
	nd, err := old.node(name)
	if err != nil {
		return err
	}
	if len(old.nodes) == 1 {
		return fmt.Errorf("%w: cannot remove %s, the last node", ErrInvalidConfig, name)
	}
	next := old.successor()
	delete(next.nodes, name)
	for _, s := range nd.servers {
		delete(next.servers, s.addr)
	}
	r, err := newRing(&c.opts, slices.Collect(maps.Keys(next.nodes)))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	next.setRing(r)
	c.topo.Store(next)
	c.followKeys(old, next)
	c.retireLater(nd.servers)
	c.opts.Logger.Info("federated: node removed", "node", name)
	return nil
}

// successor returns a copy of t to change into the next topology.
func (t *topology) successor() *topology {
	return &topology{nodes: maps.Clone(t.nodes), servers: maps.Clone(t.servers), version: t.version + 1}
}

// retireLater stops the servers of a node that left the topology, and
// closes their connections once the commands under way are done, the
// subscriptions' included: no server the federation no longer reads keeps
// one, nor any past Close.
func (c *Client) retireLater(servers []*server) {
	for _, s := range servers {
		if s.retire() {
			c.closeLater(s.client.Load())
			c.later(s.subs.closeAll)
			c.later(s.waits.closeAll)
			if ps := s.pubsub.Load(); ps != nil {
				c.closeLater(ps) // none is made once retired
			}
		}
	}
}

func (t *topology) node(name string) (*node, error) {
	n, ok := t.nodes[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownNode, name)
	}
	return n, nil
}

func (t *topology) server(addr string) (*server, error) {
	s, ok := t.servers[addr]
	if !ok {
		return nil, fmt.Errorf("%w: no server %q in the federation", ErrUnknownNode, addr)
	}
	return s, nil
}

// hashKey returns the string hashed on the ring for a key: its group when it
// has one, else its {tag} when hash tags are on and the key is not a
// metric key, else the key.
func (c *Client) hashKey(group, key string) string {
	if group != "" {
		return group
	}
	if c.opts.HashTags && !metricShaped(key) {
		return HashTag(key)
	}
	return key
}

// metricShaped reports whether key is one the metrics store keeps: its
// text before the first ':' has the shape of a period, as retention takes
// it. Such a key is placed whole whatever HashTags says: a Prometheus
// series names its labels in braces, and every series of one label set
// (every host's up{job="node"}, every day) would otherwise share a node.
func metricShaped(key string) bool {
	period, _, ok := strings.Cut(key, ":")
	return ok && metric.PeriodShaped(period)
}

// HashTag returns the part of key that Redis Cluster hashes: the text between
// the first "{" and the first "}" after it, when that is not empty; otherwise
// the whole key.
func HashTag(key string) string {
	open := strings.IndexByte(key, '{')
	if open < 0 {
		return key
	}
	end := strings.IndexByte(key[open+1:], '}')
	if end <= 0 {
		return key
	}
	return key[open+1 : open+1+end]
}

// route returns the node that owns a key.
func (c *Client) route(group, key string) (*node, error) {
	return c.topo.Load().route(c.hashKey(group, key))
}

// currentServer returns the server a node's commands go to: the current one
// while it is up (sticky), else the next up server of the group, which then
// becomes current.
func (c *Client) currentServer(n *node) (*server, error) {
	i := n.current.Load()
	s := n.servers[i]
	if !s.down.Load() {
		return s, nil
	}
	for k := 1; k < len(n.servers); k++ {
		j := (int(i) + k) % len(n.servers)
		next := n.servers[j]
		if next.down.Load() {
			continue
		}
		if n.current.CompareAndSwap(i, int32(j)) {
			next.takeovers.Add(1)
			c.opts.Logger.Warn("federated: node failed over", "node", n.name, "from", s.addr, "to", next.addr)
		}
		return next, nil
	}
	return nil, n.downError()
}

// downError describes a node none of whose servers is up.
func (n *node) downError() error {
	if len(n.servers) == 1 {
		s := n.servers[0]
		return &ServerError{Node: n.name, Server: s.addr, Err: s.downReason(), down: true}
	}
	reasons := make([]string, len(n.servers))
	for i, s := range n.servers {
		reasons[i] = s.addr + ": " + s.downReason().Error()
	}
	return &ServerError{
		Node: n.name,
		Err:  fmt.Errorf("all %d servers down (%s)", len(n.servers), strings.Join(reasons, "; ")),
		down: true,
	}
}

// withTimeout applies the command timeout to ctx unless ctx has an earlier
// deadline. A context that carries the command timeout is marked, so that a
// server is marked down only when it missed the command timeout, not when a
// caller's shorter deadline ran out.
func (c *Client) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return c.withTimeoutPlus(ctx, 0)
}

// withTimeoutPlus is withTimeout for a command that may wait on the server
// (BLPOP, say) for extra before it answers. A context that carries the
// client's deadline already keeps it.
func (c *Client) withTimeoutPlus(ctx context.Context, extra time.Duration) (context.Context, context.CancelFunc) {
	timeout := c.opts.CommandTimeout + extra
	if dl, ok := ctx.Deadline(); ok && (time.Until(dl) <= timeout || hasCommandTimeout(ctx)) {
		return ctx, func() {}
	}
	return context.WithTimeout(context.WithValue(ctx, commandTimeoutKey{}, true), timeout)
}

type commandTimeoutKey struct{}

func hasCommandTimeout(ctx context.Context) bool {
	return ctx.Value(commandTimeoutKey{}) != nil
}
