#!/bin/sh
# bench-relay.sh BIN_DIR: the relay benchmark of `make bench-relay`.
#
# Two runs of jitkey-relayload: 20,000 peers with the TLS/TCP floor in the
# same run, then 50,000 peers. Each runs with the relay (or the floor) and
# the load generator on disjoint halves of the CPUs (-pin), so that neither
# takes the other's CPU. As root, each run also gets a network namespace of
# its own (unshare -n), so that the machine-wide UDP counters the report
# quotes (datagrams while idle, receive-buffer errors) count only its
# traffic. (Peers share one UDP socket per source address: 50 sockets for
# 50,000 peers, so the open-file limit does not matter.)
set -eu
bin=${1:?usage: bench-relay.sh BIN_DIR}
go build -o "$bin/jitkey-relayload" ./relay/cmd/jitkey-relayload
run() {
	if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null; then
		unshare -n sh -c 'ip link set lo up && exec "$@"' sh "$@"
	else
		"$@"
	fi
}
# The idle cost is measured after 60 s of settling: in its first minute a
# connection also sends quic-go's path-MTU probes, one per keep-alive
# exchange until the search ends (about 4 each way).
run "$bin/jitkey-relayload" -relay-bin "$bin/jitkey-relay" -pin -settle 60s -idle-cpu 30s
# The 50,000 peers connect at 350 a second: at full speed (about 650 a
# second here) the relay and the load generator, each on one vCPU, both
# saturate while filling, and all four such quiet runs collapsed; paced,
# one of two held (BENCHMARKS.md, Relay, "Pinned CPUs"). On a 2-vCPU
# machine this run is at the edge; give the load generator its own machine.
run "$bin/jitkey-relayload" -relay-bin "$bin/jitkey-relay" -pin -peers 50000 -skip-floor -duration 5s -fill-rate 350
