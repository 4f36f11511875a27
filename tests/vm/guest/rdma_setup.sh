#!/bin/sh
# rdma_setup.sh [--peer-netns NAME]: soft-RoCE between two ends of a veth
# pair, inside a vm_run.sh guest (root). Idempotent; exits non-zero with a
# message on any failure.
#
#   va 192.0.2.1/24  <-- veth -->  vb 192.0.2.2/24
#   rxe0 on va                     rxe1 on vb
#
# Both ends stay in the initial network namespace: rxe devices cannot move
# into another one on 6.1/6.12. accept_local=1 and rp_filter=0 let each end
# accept packets whose source address is local (the other end's), so verbs
# and rdma_cm traffic really crosses the veth.
#
# --peer-netns NAME puts vb into network namespace NAME instead and creates
# no rxe1: plain IP traffic (the UDP lane) between `ip netns exec NAME ...`
# and the initial namespace then crosses the veth too (within one namespace
# it would take the local route over lo).
set -eu
VM_IP_A=${VM_IP_A:-192.0.2.1}
VM_IP_B=${VM_IP_B:-192.0.2.2}
PEER_NS=""
if [ "${1:-}" = --peer-netns ]; then PEER_NS=${2:?--peer-netns needs a name}; fi

say() { echo "rdma_setup: $*"; }
fail() { echo "rdma_setup: FAILED: $*" >&2; exit 1; }
for t in modprobe ip sysctl rdma; do
  command -v "$t" >/dev/null || fail "$t not found in the guest (host root)"
done

# rdma_rxe fails with ENOENT without the crc32 crypto module.
for m in crc32_generic veth rdma_rxe rdma_ucm ib_uverbs; do
  modprobe "$m" || fail "modprobe $m"
done

ip link set lo up
B="ip"                      # runs ip/sysctl on vb's side
if [ -n "$PEER_NS" ]; then
  [ -e "/run/netns/$PEER_NS" ] || ip netns add "$PEER_NS" || fail "ip netns add $PEER_NS"
  B="ip netns exec $PEER_NS ip"
  $B link set lo up
fi
if ! ip link show va >/dev/null 2>&1; then
  ip link add va type veth peer name vb || fail "ip link add va/vb"
  [ -z "$PEER_NS" ] || ip link set vb netns "$PEER_NS" || fail "ip link set vb netns $PEER_NS"
  ip addr add "$VM_IP_A/24" dev va
  $B addr add "$VM_IP_B/24" dev vb
fi
ip link set va up
$B link set vb up
for i in all default va vb; do
  [ "$i" != vb ] || [ -z "$PEER_NS" ] || continue
  sysctl -q -w "net.ipv4.conf.$i.accept_local=1" "net.ipv4.conf.$i.rp_filter=0" >/dev/null ||
    fail "sysctl net.ipv4.conf.$i"
done

# rxe sends through a kernel UDP socket created with the default buffer
# sizes; bursts of RDMA READ responses overflow them ("Failed sending
# ACK") and each loss costs a full RC retransmission timeout.
sysctl -q -w net.core.rmem_default=8388608 net.core.wmem_default=8388608 \
  net.core.rmem_max=8388608 net.core.wmem_max=8388608 >/dev/null || fail "sysctl net.core buffers"
links=$(rdma link show)
echo "$links" | grep -q '^link rxe0/' || rdma link add rxe0 type rxe netdev va || fail "rdma link add rxe0"
want=1
if [ -z "$PEER_NS" ]; then
  want=2
  echo "$links" | grep -q '^link rxe1/' || rdma link add rxe1 type rxe netdev vb || fail "rdma link add rxe1"
fi

# Ports go ACTIVE once the netdevs are up and carrier is seen (bounded wait).
i=0
while [ "$(rdma link show | grep -cE '^link rxe[01]/1 state ACTIVE ')" != $want ]; do
  i=$((i + 1))
  [ $i -le 40 ] || { rdma link show; fail "rxe ports not ACTIVE after 20 s"; }
  sleep 0.5
done
rdma link show
if [ -n "$PEER_NS" ]; then
  say "rxe0 on va ($VM_IP_A); vb ($VM_IP_B) in netns $PEER_NS; ready"
else
  say "rxe0 on va ($VM_IP_A), rxe1 on vb ($VM_IP_B) ready"
fi
