package ring

import (
	"bufio"
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const perlVectors = "../../testdata/perl-ring"

// vectorRow is one line of a Perl vector file.
type vectorRow struct {
	line int
	key  string // the key, or for bucket files the bucket number
	node string
}

// readVectors reads a Perl vector file: key<TAB>node, or key<TAB>node<TAB>hex
// where the key is the hex-decoded third field.
func readVectors(t *testing.T, name string) []vectorRow {
	t.Helper()
	f, err := os.Open(filepath.Join(perlVectors, name))
	require.NoError(t, err)
	defer f.Close()
	var rows []vectorRow
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		fields := strings.Split(sc.Text(), "\t")
		require.Contains(t, []int{2, 3}, len(fields), "%s:%d: fields", name, line)
		row := vectorRow{line: line, key: fields[0], node: fields[1]}
		if len(fields) == 3 {
			key, err := hex.DecodeString(fields[2])
			require.NoError(t, err, "%s:%d: hex key", name, line)
			row.key = string(key)
		}
		rows = append(rows, row)
	}
	require.NoError(t, sc.Err())
	return rows
}

// TestPerlVectors checks every row of the vectors the Perl module produced.
func TestPerlVectors(t *testing.T) {
	tests := []struct {
		file  string
		nodes []string
		rows  int
		// bucket files map a bucket number to its node, key files a key.
		buckets bool
	}{
		{"4nodes.buckets.tsv", nodeNames(4), PerlBuckets, true},
		{"8nodes.sample.keys.tsv", nodeNames(8), 400, false},
		{"8nodes-remove-redis_3.sample.keys.tsv", without(nodeNames(8), "redis_3"), 200, false},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			p, err := NewPerl(tt.nodes)
			require.NoError(t, err)
			rows := readVectors(t, tt.file)
			require.Len(t, rows, tt.rows, "rows in %s", tt.file)
			mismatches := 0
			for _, row := range rows {
				var got string
				if tt.buckets {
					b, err := strconv.Atoi(row.key)
					require.NoError(t, err, "line %d: bucket", row.line)
					got = p.BucketOwner(b)
				} else {
					got = p.Locate(row.key)
				}
				if got != row.node {
					mismatches++
					t.Errorf("line %d: %q (bucket %d): got %s, want %s", row.line, row.key, p.Bucket(row.key), got, row.node)
				}
			}
			t.Logf("%s: %d of %d rows match the Perl module", tt.file, len(rows)-mismatches, len(rows))
		})
	}
}

// TestPerlBucket checks the key hash on values worked out with md5sum:
// MD5("") begins d41d8cd9, and 0xd41d8cd9 mod 1024 = 0xd9.
func TestPerlBucket(t *testing.T) {
	p, err := NewPerl(nodeNames(1))
	require.NoError(t, err)
	tests := []struct {
		key  string
		want int
	}{
		{"", 0xd9},     // d41d8cd9…
		{"a", 0x1b9},   // 0cc175b9…
		{"foo", 0x0db}, // acbd18db…
	}
	for _, tt := range tests {
		t.Run(strconv.Quote(tt.key), func(t *testing.T) {
			assert.Equal(t, tt.want, p.Bucket(tt.key), "Bucket(%q)", tt.key)
			assert.Equal(t, "redis_1", p.Locate(tt.key), "a one-node ring owns everything")
		})
	}
}

// TestPerlPointCollisions backs the claim in Perl's doc comment: redis_1 …
// redis_64 share no ring point, so the collision rule cannot matter for
// them; where names do collide, the one that sorts last keeps the point.
func TestPerlPointCollisions(t *testing.T) {
	points := perlPoints(nodeNames(64))
	assert.Len(t, points, 64*perlPointsPerNode, "distinct points of redis_1 … redis_64")

	// SHA-1 puts point 3374318424 on both redis_78 and redis_79 (n = 265).
	const shared = 3374318424
	for _, nodes := range [][]string{{"redis_78", "redis_79"}, {"redis_79", "redis_78"}} {
		sorted, err := sortedNodes(nodes)
		require.NoError(t, err)
		points := perlPoints(sorted)
		assert.Len(t, points, 2*perlPointsPerNode-1, "distinct points of %v", nodes)
		assert.Equal(t, "redis_79", points[shared], "owner of the shared point, nodes %v", nodes)
	}
}
