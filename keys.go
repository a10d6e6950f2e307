package federated

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// Where a command's keys are. Redis declares, for each command, the
// position of its first and last key and the step between keys (COMMAND
// INFO). The declarations of every command of Redis 7.0 are in
// commandSpecs, generated from a server's COMMAND reply, so that placing a
// command never waits on a server other than its own; a command missing
// there (a module's, a newer Redis's) is asked of a server once, and the
// answer kept. Commands whose keys move with their arguments (EVAL's
// numkeys, XREAD's STREAMS, ZUNIONSTORE's numkeys...) are read here by
// their syntax; any other such command is asked of a server with COMMAND
// GETKEYS.

// keySpec is where a command's keys are, by Redis's declaration.
type keySpec struct {
	first, last, step int  // positions in the arguments, the name at 0; last < 0 counts from the end
	movable           bool // the keys move with the arguments
	known             bool // Redis described the command
}

// keySpecs caches the keySpecs of commands, by lower-case name, and of
// subcommands as "name|sub".
type keySpecs struct {
	mu    sync.Mutex
	specs map[string]keySpec
}

// keySpec returns the key spec of a command, from commandSpecs, or else
// asking a server for it the first time.
func (c *Client) keySpec(ctx context.Context, name string) (keySpec, error) {
	if spec, ok := commandSpecs[name]; ok {
		return spec, nil
	}
	c.specs.mu.Lock()
	spec, ok := c.specs.specs[name]
	c.specs.mu.Unlock()
	if ok {
		return spec, nil
	}
	spec, err := c.askKeySpec(ctx, name)
	if err != nil {
		return keySpec{}, err
	}
	c.specs.mu.Lock()
	if c.specs.specs == nil {
		c.specs.specs = make(map[string]keySpec)
	}
	c.specs.specs[name] = spec
	c.specs.mu.Unlock()
	return spec, nil
}

// askKeySpec asks an up server for COMMAND INFO of a command ("name" or
// "name|sub"). A command the server does not know has no keys declared.
func (c *Client) askKeySpec(ctx context.Context, name string) (keySpec, error) {
	rc, err := c.anyServer()
	if err != nil {
		return keySpec{}, err
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	cmd := redis.NewSliceCmd(ctx, "command", "info", name)
	if err := rc.Process(ctx, cmd); err != nil {
		return keySpec{}, fmt.Errorf("federated: learning where the keys of %s are (COMMAND INFO): %w", strings.ToUpper(name), err)
	}
	val := cmd.Val()
	if len(val) != 1 {
		return keySpec{}, nil
	}
	info, _ := val[0].([]any)
	if len(info) < 6 {
		return keySpec{}, nil // nil: unknown to the server
	}
	spec := keySpec{known: true}
	first, _ := info[3].(int64)
	last, _ := info[4].(int64)
	step, _ := info[5].(int64)
	spec.first, spec.last, spec.step = int(first), int(last), int(step)
	if flags, ok := info[2].([]any); ok {
		for _, f := range flags {
			if f == "movablekeys" {
				spec.movable = true
			}
		}
	}
	return spec, nil
}

// anyServer returns the client of an up server, for questions about
// commands that any server answers.
func (c *Client) anyServer() (*redis.Client, error) {
	if c.closed.Load() {
		return nil, ErrClosed
	}
	t := c.topo.Load()
	var errs []error
	for _, name := range t.names() {
		s, err := c.currentServer(t.nodes[name])
		if err == nil {
			return s.client.Load(), nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// containers are the commands whose keys are declared by subcommand.
var containers = func() map[string]bool {
	m := make(map[string]bool)
	for name := range commandSpecs {
		if container, _, ok := strings.Cut(name, "|"); ok {
			m[container] = true
		}
	}
	return m
}()

// commandKeys returns the keys of a command, in argument order, as the
// topology topo places them (see sortKeys). A command with none returns
// none. Keys found by the command's key spec are appended to dst, so that
// a caller's array on its stack holds the usual one key or few without an
// allocation per command.
func (c *Client) commandKeys(ctx context.Context, topo *topology, cmd redis.Cmder, dst []string) ([]string, error) {
	args := cmd.Args()
	if err := checkArgs(args); err != nil {
		return nil, err
	}
	name := strings.ToLower(cmd.Name())
	if keys, ok := movableKeys(name, args); ok {
		if name == "sort" || name == "sort_ro" {
			return c.sortKeys(topo, args, keys)
		}
		return keys, nil
	}
	specName := name
	if containers[name] && len(args) > 1 {
		specName = name + "|" + strings.ToLower(argString(args[1]))
	}
	spec, err := c.keySpec(ctx, specName)
	if err != nil {
		return nil, err
	}
	if spec.movable {
		return c.askKeys(ctx, args)
	}
	if !spec.known || spec.first <= 0 {
		return nil, nil
	}
	last := spec.last
	if last < 0 {
		last = len(args) + last
	}
	step := max(spec.step, 1)
	keys := dst
	for i := spec.first; i <= last && i < len(args); i += step {
		keys = append(keys, argString(args[i]))
	}
	return keys, nil
}

// askKeys asks a server for the keys of a command (COMMAND GETKEYS).
func (c *Client) askKeys(ctx context.Context, args []any) ([]string, error) {
	rc, err := c.anyServer()
	if err != nil {
		return nil, err
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	keys, err := rc.CommandGetKeys(ctx, args...).Result()
	if err != nil {
		var reply redis.Error
		if errors.As(err, &reply) {
			return nil, nil // Redis finds no key in it: a keyless use
		}
		return nil, fmt.Errorf("federated: learning the keys of %s (COMMAND GETKEYS): %w", argString(args[0]), err)
	}
	return keys, nil
}

// movableKeys reads the keys of the commands whose keys move with their
// arguments, by their syntax, sparing a round trip. ok is false for the
// commands it does not know.
func movableKeys(name string, args []any) (keys []string, ok bool) {
	switch name {
	case "eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro":
		return countedKeys(args, 2), true // name script numkeys key...
	case "zunion", "zinter", "zdiff", "sintercard", "zintercard", "lmpop", "zmpop":
		return countedKeys(args, 1), true // name numkeys key...
	case "blmpop", "bzmpop":
		return countedKeys(args, 2), true // name timeout numkeys key...
	case "zunionstore", "zinterstore", "zdiffstore":
		if len(args) < 2 {
			return nil, true
		}
		return append([]string{argString(args[1])}, countedKeys(args, 2)...), true
	case "xread", "xreadgroup":
		if opts := readStreamOptions(args); opts.streams > 0 {
			rest := args[opts.streams+1:]
			for _, k := range rest[:len(rest)/2] {
				keys = append(keys, argString(k))
			}
			return keys, true
		}
		return nil, true
	case "georadius":
		return radiusKeys(args, 6), true // name key longitude latitude radius unit options...
	case "georadiusbymember":
		return radiusKeys(args, 5), true // name key member radius unit options...
	case "migrate":
		return migrateKeys(args), true
	case "sort", "sort_ro":
		if len(args) < 2 {
			return nil, true
		}
		return []string{argString(args[1])}, true // and what sortKeys reads
	}
	return nil, false
}

// radiusKeys returns the keys of a GEORADIUS or GEORADIUSBYMEMBER whose
// options begin at args[options]: its key, and the destination of each
// STORE and STOREDIST. The options are read in order, as Redis reads them,
// so that a member or a COUNT named "store" is no option. (Redis stores
// to the last destination given; COMMAND GETKEYS names the first of each
// option; both are here.) The _RO variants take no STORE: their key spec
// names their key.
func radiusKeys(args []any, options int) []string {
	if len(args) < 2 {
		return nil
	}
	keys := []string{argString(args[1])}
	for i := options; i < len(args); i++ {
		switch strings.ToLower(argString(args[i])) {
		case "count":
			i++
		case "store", "storedist":
			if i+1 < len(args) {
				keys = append(keys, argString(args[i+1]))
			}
			i++
		}
	}
	return keys
}

// migrateKeys returns the keys of a MIGRATE host port key|"" db timeout
// [COPY] [REPLACE] [AUTH password] [AUTH2 username password] [KEYS
// key...]: its key, or with "" the keys after KEYS. The options are read
// in order, as Redis reads them, so that a password or a username "keys"
// is no option. A word it does not know is passed over, as COMMAND
// GETKEYS does; Redis refuses the command.
func migrateKeys(args []any) []string {
	if len(args) > 3 && argString(args[3]) != "" {
		return []string{argString(args[3])}
	}
	for i := 6; i < len(args); i++ {
		switch strings.ToLower(argString(args[i])) {
		case "auth":
			i++
		case "auth2":
			i += 2
		case "keys":
			keys := make([]string, 0, len(args)-i-1)
			for _, k := range args[i+1:] {
				keys = append(keys, argString(k))
			}
			return keys
		}
	}
	return nil
}

// countedKeys returns the keys that follow a count at args[at].
func countedKeys(args []any, at int) []string {
	if len(args) <= at {
		return nil
	}
	n, err := strconv.Atoi(argString(args[at]))
	if err != nil || n <= 0 {
		return nil
	}
	var keys []string
	for i := at + 1; i <= at+n && i < len(args); i++ {
		keys = append(keys, argString(args[i]))
	}
	return keys
}

// streamOptions is what XREAD and XREADGROUP say before their streams: the
// index of STREAMS (0 for none) and of BLOCK's argument (0 for none).
type streamOptions struct {
	streams, block int
}

// readStreamOptions reads the options of an XREAD or XREADGROUP in order,
// as Redis does, up to STREAMS: a group or a consumer named "streams" or
// "block", or a count, is an option's argument, not an option. An option
// it does not know ends the reading, and Redis refuses the command.
func readStreamOptions(args []any) streamOptions {
	var o streamOptions
	for i := 1; i < len(args); i++ {
		switch strings.ToLower(argString(args[i])) {
		case "streams":
			o.streams = i
			return o
		case "group":
			i += 2
		case "count":
			i++
		case "block":
			if i+1 < len(args) {
				o.block = i + 1
			}
			i++
		case "noack":
		default:
			return streamOptions{}
		}
	}
	return streamOptions{}
}

// sortKeys adds to the key of a SORT the keys its options name, read in
// order as Redis reads them: STORE's destination, and the keys its BY and
// GET patterns read: of a pattern whose {tag} comes before its "*", the
// key of the tag's node. A pattern that may read a key of any node fails
// with ErrCrossNode (the keys of other nodes would read as missing), as
// Redis Cluster refuses it, unless topo has one node.
func (c *Client) sortKeys(topo *topology, args []any, keys []string) ([]string, error) {
	if len(keys) == 0 {
		return keys, nil
	}
	one := len(topo.nodes) <= 1
	for i := 2; i+1 < len(args); i++ {
		switch strings.ToLower(argString(args[i])) {
		case "limit":
			i += 2
		case "store":
			i++
			keys = append(keys, argString(args[i]))
		case "by", "get":
			i++
			pattern := argString(args[i])
			star := strings.IndexByte(pattern, '*')
			if one || pattern == "#" || star < 0 {
				continue // reads no key: GET # is the element, a pattern without * none
			}
			key := pattern
			if f := strings.Index(pattern[star+1:], "->"); f >= 0 && star+1+f+2 < len(pattern) {
				key = pattern[:star+1+f] // the rest names a field of a hash
			}
			open := strings.IndexByte(key[:star], '{')
			end := -1
			if open >= 0 {
				end = strings.IndexByte(key[open+1:star], '}')
			}
			switch {
			case metricShaped(key):
				return nil, fmt.Errorf("%w: SORT %s %q names metric keys, which are placed whole, whatever their braces: they may be on any node",
					ErrCrossNode, strings.ToUpper(argString(args[i-1])), pattern)
			case c.opts.HashTags && end > 0:
				keys = append(keys, key) // placed by its tag, whatever the element
				continue
			}
			return nil, fmt.Errorf("%w: SORT %s %q may read keys of any node: give it a {tag} before its * (hash_tags: true) on the node of %q, or sort through a Group",
				ErrCrossNode, strings.ToUpper(argString(args[i-1])), pattern, keys[0])
		}
	}
	return keys, nil
}
