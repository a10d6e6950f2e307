package federated_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/redistest"
)

// binKey is a key that go-redis writes by its MarshalBinary, which it
// prefers to its String.
type binKey int

func (k binKey) MarshalBinary() ([]byte, error) { return []byte("bin:" + strconv.Itoa(int(k))), nil }
func (k binKey) String() string                 { return "str:" + strconv.Itoa(int(k)) }

// typedKey is a key as some Go type, and the name Redis stores it under,
// written here by hand from go-redis's writer (proto.Writer.WriteArg).
type typedKey struct {
	arg    any
	stored string
}

// typedKeys returns keys of every type go-redis writes, n of each where
// the type has that many values: enough that a key placed by another
// spelling than its stored name lands on another node than KeyToNode of
// that name for some of them.
func typedKeys(n int) map[string][]typedKey {
	keys := make(map[string][]typedKey)
	add := func(name string, arg any, stored string) { keys[name] = append(keys[name], typedKey{arg, stored}) }
	add("nil", nil, "")
	add("nil *string", (*string)(nil), "")
	add("nil *int", (*int)(nil), "0")
	add("nil *float64", (*float64)(nil), "0")
	add("nil *time.Time", (*time.Time)(nil), "0001-01-01T00:00:00Z")
	add("nil *time.Duration", (*time.Duration)(nil), "0")
	add("bool", true, "1")
	add("bool", false, "0")
	b := true
	add("*bool", &b, "1")
	add("float32", float32(0.1), "0.10000000149011612") // widened to 64 bits before it is written
	add("float64", 1e21, "1000000000000000000000")
	add("float64", 1.5, "1.5")
	for i := range n {
		s := fmt.Sprintf("k%d", i)
		add("string", s, s)
		add("*string", &s, s)
		add("[]byte", []byte(s), s)
		add("int", 1000+i, strconv.Itoa(1000+i))
		v := 2000 + i
		add("*int", &v, strconv.Itoa(v))
		i8, i16, i32, i64 := int8(-i), int16(300+i), int32(70000+i), int64(1)<<40+int64(i)
		add("int8", i8, strconv.Itoa(-i))
		add("*int8", &i8, strconv.Itoa(-i))
		add("int16", i16, strconv.Itoa(300+i))
		add("*int16", &i16, strconv.Itoa(300+i))
		add("int32", i32, strconv.Itoa(70000+i))
		add("*int32", &i32, strconv.Itoa(70000+i))
		add("int64", i64, strconv.FormatInt(i64, 10))
		add("*int64", &i64, strconv.FormatInt(i64, 10))
		u, u8, u16, u32, u64, up := uint(3000+i), uint8(200+i), uint16(4000+i), uint32(5000+i), uint64(1)<<63+uint64(i), uintptr(6000+i)
		add("uint", u, strconv.Itoa(3000+i))
		add("*uint", &u, strconv.Itoa(3000+i))
		add("uint8", u8, strconv.Itoa(200+i))
		add("*uint8", &u8, strconv.Itoa(200+i))
		add("uint16", u16, strconv.Itoa(4000+i))
		add("*uint16", &u16, strconv.Itoa(4000+i))
		add("uint32", u32, strconv.Itoa(5000+i))
		add("*uint32", &u32, strconv.Itoa(5000+i))
		add("uint64", u64, strconv.FormatUint(u64, 10))
		add("*uint64", &u64, strconv.FormatUint(u64, 10))
		add("uintptr", up, strconv.Itoa(6000+i))
		add("*uintptr", &up, strconv.Itoa(6000+i))
		f32, f64 := float32(i)+0.25, float64(i)*1e20
		add("*float32", &f32, strconv.FormatFloat(float64(f32), 'f', -1, 64))
		add("*float64", &f64, strconv.FormatFloat(f64, 'f', -1, 64))
		tm := time.Date(2026, 11, 25, 10, 30, i, 123456789, time.UTC)
		add("time.Time", tm, fmt.Sprintf("2026-11-25T10:30:%02d.123456789Z", i))
		add("*time.Time", &tm, fmt.Sprintf("2026-11-25T10:30:%02d.123456789Z", i))
		d := time.Duration(i+1) * time.Second
		add("time.Duration", d, strconv.Itoa(i+1)+"000000000")
		add("*time.Duration", &d, strconv.Itoa(i+1)+"000000000")
		add("encoding.BinaryMarshaler", binKey(i), "bin:"+strconv.Itoa(i))
		ip := net.IPv4(10, 0, 0, byte(i)).To4()
		add("net.IP", ip, string([]byte{10, 0, 0, byte(i)}))
	}
	return keys
}

// A key given as any type go-redis writes is placed by the name Redis
// stores it under, so that KeyToNode of that name finds it, and so does
// the same key given as another type, or as another pointer to the same
// string.
func TestKeysOfEveryTypeArePlacedByTheirStoredName(t *testing.T) {
	servers := redistest.StartN(t, 3)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	ctx := context.Background()
	direct := make(map[string]*redis.Client)
	for _, s := range servers {
		direct[s.Addr()] = directClient(t, s.Addr())
	}
	for name, keys := range typedKeys(8) {
		t.Run(name, func(t *testing.T) {
			for i, k := range keys {
				value := fmt.Sprintf("%s #%d", name, i)
				require.NoError(t, c.Do(ctx, "SET", k.arg, value).Err(), "SET %q", k.stored)
				got, err := direct[mustServer(t, c, k.stored)].Get(ctx, k.stored).Result()
				require.NoError(t, err, "key %q on the server of its node %s", k.stored, c.KeyToNode(k.stored))
				assert.Equal(t, value, got, "key %q on its server", k.stored)
				got, err = c.Get(ctx, k.stored).Result()
				require.NoError(t, err, "GET %q as a string", k.stored)
				assert.Equal(t, value, got)
				got, err = c.Do(ctx, "GET", k.arg).Text()
				require.NoError(t, err, "GET %q as %s", k.stored, name)
				assert.Equal(t, value, got)
				require.Equal(t, int64(1), c.Del(ctx, k.stored).Val(), "DEL %q", k.stored)
			}
		})
	}

	t.Run("two pointers to one string", func(t *testing.T) {
		misses := 0
		for i := range 30 {
			s1 := fmt.Sprintf("ptr%d", i)
			s2 := strings.Clone(s1)
			require.NoError(t, c.Do(ctx, "SET", &s1, "v").Err())
			if err := c.Do(ctx, "GET", &s2).Err(); errors.Is(err, redis.Nil) {
				misses++
			} else {
				require.NoError(t, err)
			}
		}
		assert.Zero(t, misses, "GETs through another pointer that missed the SET")
	})
}

// An argument go-redis cannot write fails its command with go-redis's
// reason before it is placed, rather than as keys of two nodes, or with
// every command of its server's share of a pipeline.
func TestUnwritableArgumentIsRefusedAsGoRedisRefusesIt(t *testing.T) {
	servers := redistest.StartN(t, 3)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	ctx := context.Background()
	type unwritable struct{ n int }
	bad := unwritable{1}
	spelt := fmt.Sprint(bad) // as the client once placed it
	// other is on neither the node of that spelling nor of "", same on
	// the node of "".
	other, same := "", ""
	for i := range 100 {
		k := fmt.Sprintf("w%d", i)
		if n := c.KeyToNode(k); n != c.KeyToNode(spelt) && n != c.KeyToNode("") && other == "" {
			other = k
		}
		if c.KeyToNode(k) == c.KeyToNode("") && same == "" {
			same = k
		}
	}
	require.NotEmpty(t, other)
	require.NotEmpty(t, same)

	err := c.Do(ctx, "MSET", bad, "v", other, "v").Err()
	require.Error(t, err)
	assert.NotErrorIs(t, err, federated.ErrCrossNode)
	assert.Contains(t, err.Error(), "can't marshal federated_test.unwritable")
	assert.Equal(t, int64(0), c.Exists(ctx, other).Val(), "nothing sent")

	var set *redis.StatusCmd
	var refused *redis.Cmd
	_, err = c.Pipelined(ctx, func(p redis.Pipeliner) error {
		refused = p.Do(ctx, "SET", bad, "v")
		set = p.Set(ctx, same, "v", 0)
		return nil
	})
	require.Error(t, err)
	assert.Contains(t, refused.Err().Error(), "can't marshal federated_test.unwritable")
	require.NoError(t, set.Err(), "a command beside the refused one")
	assert.Equal(t, "v", c.Get(ctx, same).Val())

	// A MarshalBinary that fails fails its command with its error, not as
	// keys of two nodes.
	err = c.Do(ctx, "MSET", failingKey{}, "v", other, "v").Err()
	require.Error(t, err)
	assert.NotErrorIs(t, err, federated.ErrCrossNode)
	assert.ErrorIs(t, err, errFailingKey)

	// Through a Group, or as a channel, too: the command beside it in the
	// pipeline goes.
	g := c.Group("g")
	_, err = g.Pipelined(ctx, func(p redis.Pipeliner) error {
		refused = p.Do(ctx, "SET", bad, "v")
		set = p.Set(ctx, "grouped", "v", 0)
		return nil
	})
	require.Error(t, err)
	assert.Contains(t, refused.Err().Error(), "can't marshal federated_test.unwritable")
	require.NoError(t, set.Err(), "a command beside the refused one")
	assert.ErrorContains(t, c.Do(ctx, "PUBLISH", bad, "m").Err(), "can't marshal federated_test.unwritable")
}

// failingKey is a key whose MarshalBinary fails.
type failingKey struct{}

var errFailingKey = errors.New("no bytes for this key")

func (failingKey) MarshalBinary() ([]byte, error) { return nil, errFailingKey }

// keyedCommand is a command whose words "$0", "$1"... are its keys, and
// whose decoys are words that a misreading of its options would take for
// keys.
type keyedCommand struct {
	args   []string
	decoys []string
}

// checkKeysAsRedisSays checks that a command's keys are those COMMAND
// GETKEYS names, and that the client places it by them: with every key on
// one node and every decoy on others it is sent, and with any one key on
// another node it fails with ErrCrossNode. c has hash tags on.
func checkKeysAsRedisSays(t *testing.T, c *federated.Client, rc *redis.Client, cmd keyedCommand) {
	t.Helper()
	ctx := context.Background()
	decoyNodes := make(map[string]bool)
	for _, d := range cmd.decoys {
		decoyNodes[c.KeyToNode(d)] = true
	}
	tag, away := "", ""
	for i := 0; i < 1000 && (tag == "" || away == ""); i++ {
		candidate := fmt.Sprintf("{t%d}", i)
		switch {
		case tag == "" && !decoyNodes[c.KeyToNode(candidate)]:
			tag = candidate
		case tag != "" && c.KeyToNode(candidate) != c.KeyToNode(tag):
			away = candidate
		}
	}
	require.NotEmpty(t, tag, "a node that holds none of the decoys %q", cmd.decoys)
	require.NotEmpty(t, away)
	words := func(moved int) ([]any, []string) {
		var args []any
		var keys []string
		for _, w := range cmd.args {
			if n, err := strconv.Atoi(strings.TrimPrefix(w, "$")); err == nil && strings.HasPrefix(w, "$") {
				w = tag + "k" + strconv.Itoa(n)
				if n == moved {
					w = away + "k" + strconv.Itoa(n)
				}
				keys = append(keys, w)
			}
			args = append(args, w)
		}
		return args, keys
	}
	args, keys := words(-1)
	got, err := rc.CommandGetKeys(ctx, args...).Result()
	require.NoError(t, err, "COMMAND GETKEYS %q", args)
	require.ElementsMatch(t, keys, got, "COMMAND GETKEYS %q", args)
	err = c.Do(ctx, args...).Err()
	if errors.Is(err, federated.ErrCrossNode) || errors.Is(err, federated.ErrKeyless) {
		t.Fatalf("%q, keys on one node, decoys %q on others: %v", args, cmd.decoys, err)
	}
	for i := 1; i < len(keys); i++ {
		args, _ := words(i)
		require.ErrorIs(t, c.Do(ctx, args...).Err(), federated.ErrCrossNode, "%q, key %d on another node", args, i)
	}
}

// GEORADIUS and GEORADIUSBYMEMBER store where their options say, which
// come after their fixed arguments: a member named "store" or "storedist"
// is no option, and the radius after it no key.
func TestGeoRadiusOptionsReadAfterTheirArguments(t *testing.T) {
	servers := redistest.StartN(t, 3)
	opts := testOptions()
	opts.HashTags = true
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: opts})
	rc := directClient(t, servers[0].Addr())
	for _, cmd := range []keyedCommand{
		{args: []string{"GEORADIUSBYMEMBER", "$0", "store", "100", "km"}, decoys: []string{"100"}},
		{args: []string{"GEORADIUSBYMEMBER", "$0", "storedist", "100", "km"}, decoys: []string{"100"}},
		{args: []string{"GEORADIUSBYMEMBER", "$0", "store", "100", "km", "STOREDIST", "$1"}, decoys: []string{"100"}},
		{args: []string{"GEORADIUSBYMEMBER", "$0", "m", "100", "km", "COUNT", "5", "STORE", "$1", "STOREDIST", "$2"}},
		{args: []string{"GEORADIUSBYMEMBER_RO", "$0", "store", "100", "km"}, decoys: []string{"100"}},
		{args: []string{"GEORADIUS", "$0", "15", "37", "200", "km", "STORE", "$1"}},
		{args: []string{"GEORADIUS", "$0", "15", "37", "200", "km", "WITHDIST", "COUNT", "3", "ASC", "STOREDIST", "$1"}},
		{args: []string{"GEORADIUS_RO", "$0", "15", "37", "200", "km", "WITHDIST"}},
	} {
		checkKeysAsRedisSays(t, c, rc, cmd)
	}

	// And it finds the members of its own node.
	ctx := context.Background()
	require.NoError(t, c.GeoAdd(ctx, "{g}places", &redis.GeoLocation{Name: "store", Longitude: 13.36, Latitude: 38.11},
		&redis.GeoLocation{Name: "storedist", Longitude: 15.08, Latitude: 37.50}).Err())
	got, err := c.Do(ctx, "GEORADIUSBYMEMBER", "{g}places", "store", "200", "km", "ASC").StringSlice()
	require.NoError(t, err)
	assert.Equal(t, []string{"store", "storedist"}, got)
}

// MIGRATE's options are read in order, as Redis reads them, so that a
// password or a username "keys" is no KEYS.
func TestMigrateOptionsReadInOrder(t *testing.T) {
	servers := redistest.StartN(t, 3)
	target := redistest.StartT(t, redistest.Options{Args: []string{"--requirepass", "keys"}})
	opts := testOptions()
	opts.HashTags = true
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: opts})
	rc := directClient(t, servers[0].Addr())
	port := strconv.Itoa(target.Port())
	for _, cmd := range []keyedCommand{
		{args: []string{"MIGRATE", "127.0.0.1", port, "", "0", "100", "AUTH", "keys", "KEYS", "$0"}, decoys: []string{"KEYS"}},
		{args: []string{"MIGRATE", "127.0.0.1", port, "", "0", "100", "AUTH", "KEYS", "KEYS", "$0", "$1"}, decoys: []string{"KEYS"}},
		{args: []string{"MIGRATE", "127.0.0.1", port, "", "0", "100", "AUTH2", "keys", "keys", "KEYS", "$0"}, decoys: []string{"keys", "KEYS"}},
		{args: []string{"MIGRATE", "127.0.0.1", port, "", "0", "100", "COPY", "REPLACE", "KEYS", "$0", "$1"}},
		{args: []string{"MIGRATE", "127.0.0.1", port, "$0", "0", "100", "COPY", "AUTH", "keys"}},
	} {
		checkKeysAsRedisSays(t, c, rc, cmd)
	}

	// And it moves the keys, from their node.
	ctx := context.Background()
	require.NoError(t, c.Set(ctx, "{m}a", "1", 0).Err())
	require.NoError(t, c.Set(ctx, "{m}b", "2", 0).Err())
	require.NoError(t, c.Do(ctx, "MIGRATE", "127.0.0.1", port, "", "0", "1000", "AUTH", "keys", "KEYS", "{m}a", "{m}b").Err())
	assert.Equal(t, int64(0), c.Exists(ctx, "{m}a", "{m}b").Val())
	moved := redis.NewClient(&redis.Options{Addr: target.Addr(), Password: "keys"})
	t.Cleanup(func() { _ = moved.Close() })
	assert.Equal(t, []any{"1", "2"}, moved.MGet(ctx, "{m}a", "{m}b").Val())
}

// SCAN walks every node with a cursor of the client's; in a pipeline, a
// transaction or a chain, which go to one server each, it fails with
// ErrKeyless and says what to do, and the commands beside it in a pipeline
// are sent.
func TestScanInABatchSaysToSendItAlone(t *testing.T) {
	servers := redistest.StartN(t, 3)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	ctx := context.Background()
	checkRefusal := func(t *testing.T, err error) {
		t.Helper()
		require.ErrorIs(t, err, federated.ErrKeyless)
		assert.Contains(t, err.Error(), "send SCAN alone (Scan, ScanIterator)")
	}
	for name, r := range map[string]redis.Cmdable{"client": c, "group": c.Group("g")} {
		t.Run(name, func(t *testing.T) {
			var scan *redis.ScanCmd
			var set *redis.StatusCmd
			_, err := r.Pipelined(ctx, func(p redis.Pipeliner) error {
				scan = p.Scan(ctx, 0, "", 10)
				set = p.Set(ctx, name+":piped", "v", 0)
				return nil
			})
			require.Error(t, err)
			checkRefusal(t, scan.Err())
			require.NoError(t, set.Err())
			assert.Equal(t, "v", r.Get(ctx, name+":piped").Val())

			_, err = r.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, name+":tx", "v", 0)
				p.Scan(ctx, 0, "", 10)
				return nil
			})
			checkRefusal(t, err)
			assert.Equal(t, int64(0), r.Exists(ctx, name+":tx").Val(), "nothing of the transaction sent")

			var keys []string
			it := r.Scan(ctx, 0, "*", 1000).Iterator()
			for it.Next(ctx) {
				keys = append(keys, it.Val())
			}
			require.NoError(t, it.Err(), "SCAN alone")
			assert.Contains(t, keys, name+":piped")
		})
	}

	var scanned redis.Cmder
	err := c.Chain().Cmd(func(r redis.Cmdable) { r.Scan(ctx, 0, "", 10) }, func(cmd redis.Cmder) { scanned = cmd }).Poll(ctx)
	require.Error(t, err)
	require.NotNil(t, scanned)
	checkRefusal(t, scanned.Err())
}

// A scan whose cursor names a node past the last, after nodes were
// removed mid-scan, is over: it failed with an error, which ended the
// caller's loop with an error where a SCAN of a server whose table
// shrank only misses keys.
func TestScanEndsWhenItsNodeWasRemoved(t *testing.T) {
	servers := redistest.StartN(t, 3)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	ctx := context.Background()
	for i := range 30 {
		require.NoError(t, c.Set(ctx, fmt.Sprint("key", i), i, 0).Err())
	}
	// Walk to the last node.
	var cursor uint64
	for {
		_, next, err := c.Scan(ctx, cursor, "", 5).Result()
		require.NoError(t, err)
		if next == 0 || next&(1<<10-1) == 2 {
			cursor = next
			break
		}
		cursor = next
	}
	require.NotZero(t, cursor, "a cursor of the third node")
	names := c.Nodes() // sorted, as a scan walks them
	require.NoError(t, c.RemoveNode(names[len(names)-1]))
	keys, next, err := c.Scan(ctx, cursor, "", 5).Result()
	require.NoError(t, err)
	assert.Empty(t, keys)
	assert.Zero(t, next)
}
