package dashboard

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestUnitOf(t *testing.T) {
	tests := []struct {
		metric string
		want   unit
	}{
		{"cpu.user", unit{}},
		{"load.1m", unit{}},
		{"mem.used_mb", unit{"bytes", 1 << 20}},
		{"disk.free_gb", unit{"bytes", 1 << 30}},
		{"net.bytes", unit{"bytes", 1}},
		{"process_resident_memory_bytes", unit{"bytes", 1}},
		{"node_network_receive_bytes_total", unit{"bytes", 1}},
		{"http_request_duration_seconds", unit{"seconds", 1}},
		{"req.latency.p99.ms", unit{"seconds", 1e-3}},
		{"gc.pause_us", unit{"seconds", 1e-6}},
		{"mem.used.pct", unit{"percent", 1}},
		{"disk_used_percent", unit{"percent", 1}},
		{"CPU.Idle.PCT", unit{"percent", 1}},
		{"net.rx.mbps", unit{"bits/s", 1e6}},
		{"uptime_s", unit{"seconds", 1}},
		{"ms", unit{}},
		{"requests_total", unit{}},
		{"disk.io.ops", unit{}},
		{"", unit{}},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, unitOf(tt.metric), "unit of %q", tt.metric)
	}
}
