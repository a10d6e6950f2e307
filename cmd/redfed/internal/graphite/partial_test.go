package graphite

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/fedtest"
)

// One bad series in a batch fails alone: a key that holds another type and
// a point of a period that retention dropped are counted and logged as two
// failed points, and the batch's 50 good points as written, as they are.
// (The whole batch was counted failed, though its good points were
// stored.)
func TestBadSeriesFailsAloneInItsBatch(t *testing.T) {
	f := startServer(t, Options{LogInterval: time.Hour}, nil)
	ctx := context.Background()
	client := fedtest.NewClient(t, federated.Config{Nodes: fedtest.SingleNodes(f.servers), Options: fedtest.Options()})
	fedtest.SameDay(t, time.Minute)
	now := time.Now().UTC().Truncate(time.Second)
	_, err := f.store.DropBefore(ctx, now.AddDate(0, 0, -1))
	require.NoError(t, err)
	badKey := fedtest.MustKey(t, client, now, "web2", "df.used")
	rc := fedtest.DirectClient(t, fedtest.MustServer(t, client, badKey))
	require.NoError(t, rc.Set(ctx, badKey, "by hand", 0).Err())

	var lines []string
	for i := range 50 {
		lines = append(lines, fmt.Sprintf("collectd.web1.df.used %d %d", i, now.Unix()-int64(i)))
		if i == 20 {
			lines = append(lines,
				fmt.Sprintf("collectd.web2.df.used 1 %d", now.Unix()),
				fmt.Sprintf("collectd.web1.df.used 1 %d", now.AddDate(0, 0, -3).Unix()))
		}
	}
	c := f.dial(t)
	_, err = io.WriteString(c, strings.Join(lines, "\n")+"\n")
	require.NoError(t, err)

	st := f.waitStats(t, func(st Stats) bool { return st.Written+st.Failed == 52 })
	assert.Equal(t, int64(50), st.Written, "points written")
	assert.Equal(t, int64(2), st.Failed, "points failed")
	points, err := fedtest.RangeOf(ctx, f.store, "web1", "df.used", now.Add(-time.Hour), now)
	require.NoError(t, err)
	assert.Len(t, points, 50, "the good points are stored")
	failed := f.logs.Values("graphite: write failed", "points")
	require.NotEmpty(t, failed)
	assert.Equal(t, int64(2), failed[0], "the log counts the failed points only")
	errs := errorTexts(f.logs.Values("graphite: write failed", "error"))
	assert.Contains(t, errs[0], "WRONGTYPE")
	assert.Contains(t, errs[0], "was dropped")
}
