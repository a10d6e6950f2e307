package federated_test

import (
	"os"
	"testing"
	"time"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/fedtest"
	"github.com/redfed/federated/internal/metric"
)

func TestMain(m *testing.M) {
	os.Exit(fedtest.Main(m, 3, &exampleServers))
}

// quiet returns opts with logging off.
func quiet(opts federated.Options) federated.Options {
	opts.Logger = fedtest.Options().Logger
	return opts
}

// dayKey returns the daily key of a host's metric.
func dayKey(t time.Time, host, metricName string) (string, error) {
	return metric.Key(metric.Day, t, host, metricName)
}

// The helpers the package's tests share with others'.
var (
	testOptions  = fedtest.Options
	singleNodes  = fedtest.SingleNodes
	nodeName     = fedtest.NodeName
	newClient    = fedtest.NewClient
	newStore     = fedtest.NewStore
	newRecorder  = fedtest.NewRecorder
	directClient = fedtest.DirectClient
	merge        = fedtest.Merge
	rangeOf      = fedtest.RangeOf
	otherServer  = fedtest.OtherServer
	serverByAddr = fedtest.ServerByAddr
	mustKey      = fedtest.MustKey
	mustServer   = fedtest.MustServer
	serverTime   = fedtest.ServerTime
)

type (
	recordHandler  = fedtest.Logs
	commandCounter = fedtest.CommandCounter
)
