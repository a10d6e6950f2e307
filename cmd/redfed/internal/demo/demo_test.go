package demo_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/redfed/federated/cmd/redfed/internal/demo"
)

func TestMain(m *testing.M) {
	redis.SetLogger(discard{})
	goleak.VerifyTestMain(m)
}

type discard struct{}

func (discard) Printf(context.Context, string, ...any) {}

func TestDemo(t *testing.T) {
	for _, inProcess := range []bool{false, true} {
		t.Run(fmt.Sprintf("in-process=%v", inProcess), func(t *testing.T) {
			var out strings.Builder
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			d, err := demo.Start(ctx, demo.Options{Hosts: 10, Backfill: 5 * time.Minute, InProcess: inProcess, Out: &out})
			require.NoError(t, err)
			defer func() { require.NoError(t, d.Close()) }()
			sum, err := d.Script(ctx)
			require.NoError(t, err, out.String())
			sum.Print(func(f string, a ...any) { fmt.Fprintf(&out, f, a...) })
			t.Log("\n" + out.String())
			assert.Zero(t, sum.Failed, "no write failed: the group failed over")
			assert.Zero(t, sum.Lost(), "every acknowledged point is on the replicas")
			assert.Positive(t, sum.Written)
			assert.True(t, sum.Check.OK(), "the replicas agree at the end")
			assert.NotEqual(t, sum.Killed, sum.FailedOverTo)
			if inProcess {
				assert.Contains(t, sum.Mode, "in-process")
			} else {
				assert.Contains(t, sum.Mode, "redis-server")
			}
		})
	}
}
