package federated

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Commands is the blocking API: one call, one answer, routed by key with
// failover. Client embeds the Commands that hash keys as they are; Group
// returns Commands that hash a key group instead.
//
// Every call takes a context; the command timeout applies when the context
// has no earlier deadline. Results are go-redis commands, so their Result,
// Val and Err methods work as with go-redis; a missing key is redis.Nil, an
// unreachable server an error that matches ErrServerDown.
type Commands struct {
	client *Client
	group  string
}

// Group returns the blocking API with keys placed by the key group instead of
// by themselves: every key used through it lands on the group's node (the
// Perl module's [group, key]).
func (c *Client) Group(group string) Commands {
	return Commands{client: c, group: group}
}

// Do sends any command, routed by key. args is the whole command, name
// first: c.Do(ctx, "k", "SET", "k", "v").
func (c Commands) Do(ctx context.Context, key string, args ...any) *redis.Cmd {
	cmd := redis.NewCmd(ctx, args...)
	c.process(ctx, key, cmd)
	return cmd
}

// Get runs GET key.
func (c Commands) Get(ctx context.Context, key string) *redis.StringCmd {
	cmd := redis.NewStringCmd(ctx, "get", key)
	c.process(ctx, key, cmd)
	return cmd
}

// Set runs SET key value, with EX/PX when expiration is positive.
func (c Commands) Set(ctx context.Context, key string, value any, expiration time.Duration) *redis.StatusCmd {
	args := []any{"set", key, value}
	if expiration > 0 {
		if expiration%time.Second == 0 {
			args = append(args, "ex", int64(expiration/time.Second))
		} else {
			args = append(args, "px", expiration.Milliseconds())
		}
	}
	cmd := redis.NewStatusCmd(ctx, args...)
	c.process(ctx, key, cmd)
	return cmd
}

// Del runs DEL on keys that live on one node; see MGet for keys on several.
func (c Commands) Del(ctx context.Context, keys ...string) *redis.IntCmd {
	cmd := redis.NewIntCmd(ctx, keysArgs("del", keys)...)
	c.processMulti(ctx, keys, cmd)
	return cmd
}

// Exists runs EXISTS on keys that live on one node.
func (c Commands) Exists(ctx context.Context, keys ...string) *redis.IntCmd {
	cmd := redis.NewIntCmd(ctx, keysArgs("exists", keys)...)
	c.processMulti(ctx, keys, cmd)
	return cmd
}

// Expire runs EXPIRE key seconds. Like go-redis, it rounds an expiration
// under a second up to one: EXPIRE key 0 would delete the key.
func (c Commands) Expire(ctx context.Context, key string, expiration time.Duration) *redis.BoolCmd {
	sec := int64(expiration / time.Second)
	if expiration > 0 && sec == 0 {
		sec = 1
	}
	cmd := redis.NewBoolCmd(ctx, "expire", key, sec)
	c.process(ctx, key, cmd)
	return cmd
}

// Incr runs INCR key.
func (c Commands) Incr(ctx context.Context, key string) *redis.IntCmd {
	cmd := redis.NewIntCmd(ctx, "incr", key)
	c.process(ctx, key, cmd)
	return cmd
}

// IncrBy runs INCRBY key n.
func (c Commands) IncrBy(ctx context.Context, key string, n int64) *redis.IntCmd {
	cmd := redis.NewIntCmd(ctx, "incrby", key, n)
	c.process(ctx, key, cmd)
	return cmd
}

// HSet runs HSET key field value [field value ...].
func (c Commands) HSet(ctx context.Context, key string, fieldValues ...any) *redis.IntCmd {
	cmd := redis.NewIntCmd(ctx, append([]any{"hset", key}, fieldValues...)...)
	c.process(ctx, key, cmd)
	return cmd
}

// HGet runs HGET key field.
func (c Commands) HGet(ctx context.Context, key, field string) *redis.StringCmd {
	cmd := redis.NewStringCmd(ctx, "hget", key, field)
	c.process(ctx, key, cmd)
	return cmd
}

// HGetAll runs HGETALL key.
func (c Commands) HGetAll(ctx context.Context, key string) *redis.MapStringStringCmd {
	cmd := redis.NewMapStringStringCmd(ctx, "hgetall", key)
	c.process(ctx, key, cmd)
	return cmd
}

// ZAdd runs ZADD key score member [score member ...].
func (c Commands) ZAdd(ctx context.Context, key string, members ...redis.Z) *redis.IntCmd {
	cmd := redis.NewIntCmd(ctx, zaddArgs(key, members)...)
	c.process(ctx, key, cmd)
	return cmd
}

// ZRangeByScore runs ZRANGEBYSCORE key min max [LIMIT offset count].
func (c Commands) ZRangeByScore(ctx context.Context, key string, opt *redis.ZRangeBy) *redis.StringSliceCmd {
	cmd := redis.NewStringSliceCmd(ctx, rangeByArgs("zrangebyscore", key, opt.Min, opt.Max, false, opt)...)
	c.process(ctx, key, cmd)
	return cmd
}

// ZRangeByScoreWithScores runs ZRANGEBYSCORE key min max WITHSCORES.
func (c Commands) ZRangeByScoreWithScores(ctx context.Context, key string, opt *redis.ZRangeBy) *redis.ZSliceCmd {
	cmd := redis.NewZSliceCmd(ctx, rangeByArgs("zrangebyscore", key, opt.Min, opt.Max, true, opt)...)
	c.process(ctx, key, cmd)
	return cmd
}

// ZRevRangeByScore runs ZREVRANGEBYSCORE key max min: highest scores first.
func (c Commands) ZRevRangeByScore(ctx context.Context, key string, opt *redis.ZRangeBy) *redis.StringSliceCmd {
	cmd := redis.NewStringSliceCmd(ctx, rangeByArgs("zrevrangebyscore", key, opt.Max, opt.Min, false, opt)...)
	c.process(ctx, key, cmd)
	return cmd
}

// ZRevRangeByScoreWithScores runs ZREVRANGEBYSCORE key max min WITHSCORES.
func (c Commands) ZRevRangeByScoreWithScores(ctx context.Context, key string, opt *redis.ZRangeBy) *redis.ZSliceCmd {
	cmd := redis.NewZSliceCmd(ctx, rangeByArgs("zrevrangebyscore", key, opt.Max, opt.Min, true, opt)...)
	c.process(ctx, key, cmd)
	return cmd
}

// ZCard runs ZCARD key.
func (c Commands) ZCard(ctx context.Context, key string) *redis.IntCmd {
	cmd := redis.NewIntCmd(ctx, "zcard", key)
	c.process(ctx, key, cmd)
	return cmd
}

// ZRem runs ZREM key member [member ...].
func (c Commands) ZRem(ctx context.Context, key string, members ...any) *redis.IntCmd {
	cmd := redis.NewIntCmd(ctx, append([]any{"zrem", key}, members...)...)
	c.process(ctx, key, cmd)
	return cmd
}

// ZRemRangeByScore runs ZREMRANGEBYSCORE key min max.
func (c Commands) ZRemRangeByScore(ctx context.Context, key, min, max string) *redis.IntCmd {
	cmd := redis.NewIntCmd(ctx, "zremrangebyscore", key, min, max)
	c.process(ctx, key, cmd)
	return cmd
}

// MGet runs MGET on keys that live on one node. Keys on different nodes fail
// with ErrCrossNode and nothing is sent; use a key group to keep keys
// together.
func (c Commands) MGet(ctx context.Context, keys ...string) *redis.SliceCmd {
	cmd := redis.NewSliceCmd(ctx, keysArgs("mget", keys)...)
	c.processMulti(ctx, keys, cmd)
	return cmd
}

// zaddArgs returns the arguments of ZADD key score member [score member ...].
func zaddArgs(key string, members []redis.Z) []any {
	args := make([]any, 2, 2+2*len(members))
	args[0], args[1] = "zadd", key
	for _, m := range members {
		args = append(args, m.Score, m.Member)
	}
	return args
}

func keysArgs(name string, keys []string) []any {
	args := make([]any, 1, 1+len(keys))
	args[0] = name
	for _, k := range keys {
		args = append(args, k)
	}
	return args
}

func rangeByArgs(name, key, from, to string, withScores bool, opt *redis.ZRangeBy) []any {
	args := []any{name, key, from, to}
	if withScores {
		args = append(args, "withscores")
	}
	if opt.Offset != 0 || opt.Count != 0 {
		args = append(args, "limit", opt.Offset, opt.Count)
	}
	return args
}

// processMulti sends a command on several keys after checking that they all
// live on one node.
func (c Commands) processMulti(ctx context.Context, keys []string, cmd redis.Cmder) {
	if len(keys) == 0 {
		cmd.SetErr(fmt.Errorf("federated: %s needs at least one key", cmd.Name()))
		return
	}
	first := c.client.route(c.group, keys[0])
	for _, k := range keys[1:] {
		if n := c.client.route(c.group, k); n != first {
			cmd.SetErr(fmt.Errorf("%w: %s: key %q is on node %s, key %q on node %s",
				ErrCrossNode, cmd.Name(), keys[0], first.name, k, n.name))
			return
		}
	}
	c.client.processOn(ctx, first, cmd)
}

// process routes a command by key and sends it.
func (c Commands) process(ctx context.Context, key string, cmd redis.Cmder) {
	c.client.processOn(ctx, c.client.route(c.group, key), cmd)
}

// processOn sends a command to a node's current server. When the connection
// fails, the server is marked down (by the health hook) and the command goes
// to the next up server of the group, each server at most once; when it
// failed on a connection of the server's replaced client (see healthHook),
// it goes to the same server again on the new one. A timeout is not
// retried: the command may have run. The error is set on cmd.
func (c *Client) processOn(ctx context.Context, n *node, cmd redis.Cmder) {
	if c.closed.Load() {
		cmd.SetErr(ErrClosed)
		return
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	var tries retries
	for {
		s, err := c.currentServer(n)
		if err != nil {
			cmd.SetErr(err)
			return
		}
		rc := s.client.Load()
		err = rc.Process(ctx, cmd)
		if err == nil || !isServerFault(ctx, err) {
			return
		}
		if isRetryable(err) && ctx.Err() == nil && tries.again(n, s, rc != s.client.Load()) {
			cmd.SetErr(nil)
			continue
		}
		cmd.SetErr(&ServerError{Node: n.name, Server: s.addr, Err: err, down: s.down.Load()})
		return
	}
}
