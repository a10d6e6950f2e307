package remote_test

import (
	"fmt"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/redfed/federated/prometheus/remote"
)

// A Prometheus series and the redfed series it is stored as, and back.
func ExampleSeriesOf() {
	ls := labels.FromStrings("__name__", "http_requests_total", "instance", "localhost:9090",
		"job", "prometheus", "path", `/say "hi"`)
	s, err := remote.SeriesOf(ls, remote.DefaultHostLabel)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s.Host)
	fmt.Println(s.Metric)
	back, err := remote.LabelsOf(s, remote.DefaultHostLabel)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(labels.Equal(ls, back))
	// Output:
	// localhost%3A9090
	// http_requests_total{job="prometheus",path="/say \"hi\""}
	// true
}
