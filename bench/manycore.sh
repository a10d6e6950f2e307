#!/usr/bin/env bash
# Measures on a machine without Go: the peer suite (W1 and W2 at 16 and 64
# writers, with server and client CPU per op), the syncer's lag at 100k,
# 200k and 300k points/s over 4 groups of 2, the 200k run with a CPU
# profile, and the server CPU of each step of replication.
#
# Build here, from the project's root, with redis-server's binaries and
# libraries packed into .devkit/kit.tar.xz (bin/ and lib/):
#
#	(cd bench && CGO_ENABLED=0 go build -trimpath -ldflags=-s -o ../.devkit/bench .)
#	CGO_ENABLED=0 go test -c -trimpath -ldflags=-s -o .devkit/syncer.test ./syncer
#	CGO_ENABLED=0 go test -c -trimpath -ldflags=-s -o .devkit/metrics.test ./metrics
#
# and, to compare the sharded Recorder of the branch recorder-shards:
#
#	git worktree add /tmp/shards recorder-shards
#	(cd /tmp/shards && CGO_ENABLED=0 go test -c -trimpath -ldflags=-s \
#		-o "$OLDPWD/.devkit/metrics-shards.test" ./metrics)
#
# then run there, from a copy of the checkout with .devkit:
#
#	bench/manycore.sh OUTDIR          # about 5 minutes on 16 cores
#	bench/manycore.sh OUTDIR quick    # a smoke run of the script itself
#
# OUTDIR receives machine.txt, bench.json (go run . -json's shape),
# bench.log, syncer100000.txt, syncer200000.txt (with the servers'
# commands per point written), syncer300000.txt, syncercosts.txt (the
# server CPU of each step of replication, per key) and syncer200k.prof
# (read it with go tool pprof .devkit/syncer.test syncer200k.prof), and
# for each metrics test binary (metrics, metrics-shards) NAME-add.txt
# (BenchmarkRecorderAdd at 1, 4 and 16 CPUs) and NAME-w2.txt (the
# Recorder's W2 at 16 CPUs, 128 writers, client and server CPU per point)
# with its CPU and mutex profiles, NAME-w2.prof and NAME-w2.mutex (read
# them with go tool pprof .devkit/NAME.test FILE: the mutex profile says
# how long writers waited for each other, one contention in 100 sampled).
set -uo pipefail
out=$(realpath "$1")
quick=${2:-}
mkdir -p "$out" /tmp/kit
tar -xJf .devkit/kit.tar.xz -C /tmp/kit
export PATH=/tmp/kit/bin:$PATH LD_LIBRARY_PATH=/tmp/kit/lib
{
	nproc
	lscpu | grep -E 'Model name|^CPU\(s\)|Thread|Socket'
	redis-server --version
	free -g | head -2
} >"$out/machine.txt" 2>&1
if [ -n "$quick" ]; then
	bargs=(-rounds 1 -points 20000 -w1-ops 2000 -servers 2 -w1-batches 20 -w2-batches 1000 -w2-writers 4)
	n100=20000
	n200=20000
	n300=20000
	ncosts=2000
	nadd=20000
	nw2=20000
else
	bargs=(-rounds 3 -w1-batches 20 -w2-batches 1000 -w2-writers 16,64)
	n100=1500000
	n200=3000000
	n300=4500000
	ncosts=50000
	nadd=4000000
	nw2=10000000
fi
timeout 330 .devkit/bench "${bargs[@]}" -json >"$out/bench.json" 2>"$out/bench.log"
cd metrics || exit 1
for v in metrics metrics-shards; do
	[ -x "../.devkit/$v.test" ] || continue
	timeout 90 "../.devkit/$v.test" -test.run XXX -test.bench BenchmarkRecorderAdd \
		-test.benchtime "${nadd}x" -test.cpu 1,4,16 >"$out/$v-add.txt" 2>&1
	timeout 90 "../.devkit/$v.test" -test.run XXX -test.bench 'BenchmarkW2/impl=recorder' \
		-test.benchtime "${nw2}x" -test.cpu 16 -test.cpuprofile "$out/$v-w2.prof" \
		-test.mutexprofile "$out/$v-w2.mutex" -test.mutexprofilefraction 100 \
		>"$out/$v-w2.txt" 2>&1
done
cd ../syncer || exit 1
timeout 60 ../.devkit/syncer.test -test.run XXX -test.bench BenchmarkSyncerLag \
	-test.benchtime "${n100}x" -syncer.rate=100000 >"$out/syncer100000.txt" 2>&1
timeout 60 ../.devkit/syncer.test -test.run XXX -test.bench BenchmarkSyncerLag \
	-test.benchtime "${n200}x" -test.cpuprofile "$out/syncer200k.prof" -syncer.rate=200000 \
	-syncer.commands -test.v >"$out/syncer200000.txt" 2>&1
timeout 60 ../.devkit/syncer.test -test.run XXX -test.bench BenchmarkSyncerLag \
	-test.benchtime "${n300}x" -syncer.rate=300000 >"$out/syncer300000.txt" 2>&1
timeout 60 ../.devkit/syncer.test -test.run XXX -test.bench BenchmarkSyncerCosts \
	-test.benchtime "${ncosts}x" >"$out/syncercosts.txt" 2>&1
echo done >"$out/done"
