package metric_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/redfed/federated/internal/metric"
)

func ExampleKey() {
	t := time.Date(2026, 11, 25, 13, 45, 0, 0, time.UTC)
	day, _ := metric.Key(metric.Day, t, "web1.sfo", "cpu.user")
	hour, _ := metric.Key(metric.Hour, t, "db1", "redis:cmd:get")
	fmt.Println(day)
	fmt.Println(hour)

	_, err := metric.Key(metric.Day, t, "web1:6379", "cpu.user")
	fmt.Println(errors.Is(err, metric.ErrBadHost), err)
	// Output:
	// 2026-11-25:web1.sfo:cpu.user
	// 2026-11-25T13:db1:redis:cmd:get
	// true federated: bad host "web1:6379": contains ':' at byte 4
}

func ExampleParseKey() {
	start, host, name, err := metric.ParseKey(metric.Day, "2026-11-25:db1:redis:cmd:get")
	fmt.Println(start, host, name, err)
	// Output: 2026-11-25 00:00:00 +0000 UTC db1 redis:cmd:get <nil>
}

// The write path validates names once and then formats keys and members
// into reused buffers.
func ExampleAppendMember() {
	start := metric.Day.Start(metric.Time(1764075600.25))
	key := metric.AppendKey(nil, metric.Day, start, "web1.sfo", "cpu.user")
	var member []byte
	for _, p := range []metric.Point{{Time: 1764075600.25, Value: 0.5}, {Time: 1764075660, Value: -3e-5}} {
		member = metric.AppendMember(member[:0], p.Time, p.Value)
		fmt.Printf("ZADD %s %s\n", key, member)
	}
	// Output:
	// ZADD 2025-11-25:web1.sfo:cpu.user 1764075600.25:0.5
	// ZADD 2025-11-25:web1.sfo:cpu.user 1764075660:-3e-05
}

func ExampleParseMember() {
	for _, m := range []string{"1290000000:12", "1290000000.25:-3e-5", "1290000000:nan"} {
		ts, value, err := metric.ParseMember(m)
		fmt.Println(ts, value, err)
	}
	// Output:
	// 1.29e+09 12 <nil>
	// 1.29000000025e+09 -3e-05 <nil>
	// 0 0 federated: bad member "1290000000:nan": value has 'n' at byte 11, want a decimal number
}

func ExamplePeriod_Periods() {
	from := time.Date(2026, 11, 25, 22, 30, 0, 0, time.UTC)
	to := time.Date(2026, 11, 26, 1, 0, 0, 0, time.UTC)
	for _, start := range metric.Hour.Periods(from, to) {
		fmt.Println(metric.Hour.Format(start))
	}
	// Output:
	// 2026-11-25T22
	// 2026-11-25T23
	// 2026-11-26T00
	// 2026-11-26T01
}
