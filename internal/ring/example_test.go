package ring_test

import (
	"fmt"

	"github.com/redfed/federated/internal/ring"
)

func ExampleNewConsistent() {
	r, err := ring.NewConsistent([]string{"redis_1", "redis_2", "redis_3", "redis_4"}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(r.Locate("2026-11-25:web123.sfo:cpu.user"))
	// Output: redis_4
}

// A Go service and Perl writers configured with the same node names agree on
// where a key lives (this key and node are a row of the Perl module's own
// vectors in testdata/perl-ring).
func ExampleNewPerl() {
	r, err := ring.NewPerl([]string{
		"redis_1", "redis_2", "redis_3", "redis_4",
		"redis_5", "redis_6", "redis_7", "redis_8",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	key := "2026-12-25:cache944.sfo:req.latency.p99"
	fmt.Println(r.Bucket(key), r.Locate(key))
	// Output: 445 redis_8
}
