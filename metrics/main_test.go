package metrics_test

import (
	"os"
	"testing"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/fedtest"
)

func TestMain(m *testing.M) {
	os.Exit(fedtest.Main(m, 3, &exampleServers))
}

// exampleServers are the addresses of the redis-server processes that the
// examples use, started by TestMain.
var exampleServers []string

// exampleConfig is a federation of the example servers, one node each. In a
// program it would come from LoadConfig.
func exampleConfig() federated.Config {
	nodes := make(map[string]federated.Node, len(exampleServers))
	for i, addr := range exampleServers {
		nodes[nodeName(i+1)] = federated.Node{Address: addr}
	}
	return federated.Config{Nodes: nodes}
}

// The helpers the package's tests share with others'.
var (
	testOptions   = fedtest.Options
	singleNodes   = fedtest.SingleNodes
	nodeName      = fedtest.NodeName
	newClient     = fedtest.NewClient
	newStore      = fedtest.NewStore
	newRecorder   = fedtest.NewRecorder
	directClient  = fedtest.DirectClient
	merge         = fedtest.Merge
	rangeOf       = fedtest.RangeOf
	rangeBySeries = fedtest.RangeBySeries
	otherServer   = fedtest.OtherServer
	serverByAddr  = fedtest.ServerByAddr
	mustKey       = fedtest.MustKey
	mustServer    = fedtest.MustServer
	serverTime    = fedtest.ServerTime
	sameDay       = fedtest.SameDay
)

type (
	recordHandler  = fedtest.Logs
	commandCounter = fedtest.CommandCounter
)
