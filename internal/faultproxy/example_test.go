package faultproxy_test

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/redfed/federated/internal/faultproxy"
	"github.com/redfed/federated/internal/redistest"
)

// A blackhole makes calls through the proxy time out; Heal restores them.
func Example() {
	s, err := redistest.Start(redistest.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = s.Stop() }()
	p, err := faultproxy.New(s.Addr())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = p.Close() }()

	c := redis.NewClient(&redis.Options{
		Addr:                     p.Addr(),
		MaxRetries:               -1,
		ContextTimeoutEnabled:    true,
		DisableIdentity:          true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
	defer func() { _ = c.Close() }()
	ctx := context.Background()
	fmt.Println(c.Ping(ctx).Val())

	p.Blackhole(true)
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	fmt.Println("blackholed:", c.Ping(short).Err() != nil)

	p.Heal()
	fmt.Println(c.Ping(ctx).Val())
	// Output:
	// PONG
	// blackholed: true
	// PONG
}
