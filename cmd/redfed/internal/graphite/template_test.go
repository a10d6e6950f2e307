package graphite

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTemplateMap(t *testing.T) {
	for _, tc := range []struct {
		template, path string
		host, metric   string
	}{
		{DefaultTemplate, "collectd.web1_sfo.cpu-0.cpu-user", "web1_sfo", "cpu-0.cpu-user"},
		{DefaultTemplate, "collectd.web1.load.load.shortterm", "web1", "load.load.shortterm"},
		{DefaultTemplate, "collectd.web1.uptime", "web1", "uptime"},
		{"host.metric*", "web1.memory.memory-used", "web1", "memory.memory-used"},
		{"servers.host.host.metric*", "servers.web1.sfo.cpu.user", "web1.sfo", "cpu.user"},
		{"*.host.metric.*.metric", "dc1.web1.cpu.x.user", "web1", "cpu.user"},
		{"stats.metric.host", "stats.requests.web1", "web1", "requests"},
		{DefaultTemplate, "collectd.web1.a:b", "web1", "a:b"},
	} {
		t.Run(tc.template+" "+tc.path, func(t *testing.T) {
			tmpl, err := Parse(tc.template)
			require.NoError(t, err)
			assert.Equal(t, tc.template, tmpl.String())
			host, metric, err := tmpl.Map(tc.path)
			require.NoError(t, err)
			assert.Equal(t, tc.host, host, "host")
			assert.Equal(t, tc.metric, metric, "metric")
		})
	}
}

func TestTemplateMapRefuses(t *testing.T) {
	for _, tc := range []struct {
		template, path, want string
	}{
		{DefaultTemplate, "collectd.web1", "2 words, want 3 or more"},
		{DefaultTemplate, "diamond.web1.cpu.user", `word 1 is "diamond", want "collectd"`},
		{DefaultTemplate, "collectd..cpu", "word 2 is empty"},
		{DefaultTemplate, "collectd.web1.cpu.", "word 4 is empty"},
		{DefaultTemplate, "collectd.web1:80.cpu", "contains ':'"},
		{DefaultTemplate, "collectd.web1.cpu;dc=sfo", "tagged paths"},
		{DefaultTemplate, "collectd.web\u200b1.cpu", "invisible format character"},
		{DefaultTemplate, "collectd.web1." + strings.Repeat("m", 600), "longer than the limit of 512"},
		{"host.metric", "web1.cpu.user", "3 words, want 2"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			tmpl, err := Parse(tc.template)
			require.NoError(t, err)
			_, _, err = tmpl.Map(tc.path)
			require.ErrorIs(t, err, ErrUnmapped)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestParseTemplateRefuses(t *testing.T) {
	for _, tc := range []struct{ template, want string }{
		{"", "empty"},
		{"collectd.metric*", "no host word"},
		{"collectd.host", "no metric or metric* word"},
		{"host.metric*.x", "metric* is word 2; it must be the last"},
		{"host..metric", "word 2 is empty"},
		{"host.metric.", "word 3 is empty"},
		{"host.met*ric", `word 2 "met*ric": '*' stands alone`},
		{"col lectd.host.metric", "white space"},
		{"a:b.host.metric", "':'"},
	} {
		t.Run(tc.template, func(t *testing.T) {
			_, err := Parse(tc.template)
			require.ErrorIs(t, err, ErrBadTemplate)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}
