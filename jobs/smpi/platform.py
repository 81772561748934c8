#!/usr/bin/python3
"""platform.py — a SimGrid platform file and hostfile for a simulated moerun cluster.

    jobs/smpi/platform.py --nodes N --ranks-per-node R [--preset NAME] [--nic-gbit G]
        [--nic-lat-us L] [--node-gbyte B] [--node-lat-us L] [--node-cores C]
        [--topology flat|fat-tree:LEAF,UP|dragonfly:G,C,R] --out DIR

writes DIR/platform.xml and DIR/hostfile (one line per rank, R lines per host, ranks of a
node consecutive, as mpirun --map-by core places them). Each node is one SimGrid host with
R cores; its NIC is a private link of the NIC bandwidth and latency; ranks on one node talk
through the host's loopback link (on-node bandwidth and latency). CPU: a rank computes at
most one core's rate (moerun charges sim_gflops per core, runtime/sim.h); --node-cores C
(default R, may be fractional) is the CPU a node has for its R ranks, shared among those
computing at once: C < R models ranks oversubscribing cores, e.g. a test bed of emulated
hosts on fewer physical cores (bench/smpi_validate.sh). Topologies:
  flat            every NIC on one non-blocking backbone (crossbar), the default
  fat-tree:L,U    two levels: leaf switches of L nodes, U uplinks per leaf to the spine
                  (U < L makes the tree oversubscribed L:U)
  dragonfly:G,C,R SimGrid's DRAGONFLY with G groups, C chassis per group, R routers per
                  chassis (nodes spread evenly; N must be a multiple of G*C*R)
Presets (docs/simulation.md): ib100 (100 Gb/s, 1.0 us), eth25 (25 Gb/s, 5 us), testbed
(the emulated hosts of jobs/cluster/emulate.sh at 1 Gbit/s, calibrated with a2a-bench).
Explicit flags override a preset's values. Exit 2 on a bad value, naming the flag.
"""
import argparse
import math
import os
import sys

PRESETS = {
    # nic_gbit, nic_lat_us, node_gbyte (on-node), node_lat_us
    "ib100": (100.0, 1.0, 20.0, 0.3),
    "eth25": (25.0, 5.0, 20.0, 0.3),
    # calibrated on the emulated hosts (tc tbf 1gbit, veth + bridge): see docs/simulation.md
    "testbed": (0.94, 60.0, 4.0, 2.0),
}


def fail(msg):
    print("platform.py: " + msg, file=sys.stderr)
    sys.exit(2)


def positive(name, v, lo=0.0, hi=1e9):
    if not (lo < v <= hi):
        fail("%s: %g is out of range; allowed (%g, %g]" % (name, v, lo, hi))
    return v


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, required=True)
    ap.add_argument("--ranks-per-node", type=int, default=1)
    ap.add_argument("--preset", choices=sorted(PRESETS), default="ib100")
    ap.add_argument("--nic-gbit", type=float)
    ap.add_argument("--nic-lat-us", type=float)
    ap.add_argument("--node-gbyte", type=float)
    ap.add_argument("--node-lat-us", type=float)
    ap.add_argument("--node-cores", type=float)
    ap.add_argument("--topology", default="flat")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    if not 1 <= a.nodes <= 65536:
        fail("--nodes: %d is out of range; allowed 1..65536" % a.nodes)
    if not 1 <= a.ranks_per_node <= 1024:
        fail("--ranks-per-node: %d is out of range; allowed 1..1024" % a.ranks_per_node)
    nic, nlat, node, olat = PRESETS[a.preset]
    nic = positive("--nic-gbit", a.nic_gbit if a.nic_gbit is not None else nic, 0, 1e5)
    nlat = positive("--nic-lat-us", a.nic_lat_us if a.nic_lat_us is not None else nlat, 0, 1e6)
    node = positive("--node-gbyte", a.node_gbyte if a.node_gbyte is not None else node, 0, 1e5)
    olat = positive("--node-lat-us", a.node_lat_us if a.node_lat_us is not None else olat, 0, 1e6)
    cores = a.node_cores if a.node_cores is not None else float(a.ranks_per_node)
    positive("--node-cores", cores, 0, 1024)
    # SimGrid host: `ncore` cores of `speed` each; an execution gets at most one core, and
    # the executions running at once share ncore x speed. One core is 1 Gflop/s (runtime/sim.h
    # charges sim_gflops per core in these units); a fractional C lowers the core speed.
    ncore = max(1, min(a.ranks_per_node, math.ceil(cores)))
    speed = min(1.0, cores / ncore)

    topo = a.topology
    extra = ""
    if topo == "flat":
        pass
    elif topo.startswith("fat-tree:"):
        try:
            leaf, up = (int(x) for x in topo.split(":", 1)[1].split(","))
        except ValueError:
            fail("--topology: %r: allowed fat-tree:LEAF,UP with integers" % topo)
        if leaf < 1 or up < 1 or a.nodes % leaf:
            fail("--topology: fat-tree:%d,%d needs LEAF >= 1, UP >= 1 and nodes (%d) a multiple "
                 "of LEAF" % (leaf, up, a.nodes))
        nleaf = a.nodes // leaf
        # SimGrid FAT_TREE: levels; down links per switch; up links per node; parallel links
        extra = ' topology="FAT_TREE" topo_parameters="2;%d,%d;1,%d;1,1"' % (leaf, nleaf, up)
    elif topo.startswith("dragonfly:"):
        try:
            g, c, r = (int(x) for x in topo.split(":", 1)[1].split(","))
        except ValueError:
            fail("--topology: %r: allowed dragonfly:G,C,R with integers" % topo)
        routers = g * c * r
        if min(g, c, r) < 1 or a.nodes % routers:
            fail("--topology: dragonfly:%d,%d,%d needs nodes (%d) a multiple of G*C*R" %
                 (g, c, r, a.nodes))
        extra = ' topology="DRAGONFLY" topo_parameters="%d,1;%d,1;%d,1;%d"' % (
            g, c, r, a.nodes // routers)
    else:
        fail("--topology: %r: allowed flat, fat-tree:LEAF,UP, dragonfly:G,C,R" % topo)

    os.makedirs(a.out, exist_ok=True)
    bw_bps = nic * 1e9 / 8  # bytes per second
    xml = """<?xml version='1.0'?>
<!DOCTYPE platform SYSTEM "https://simgrid.org/simgrid.dtd">
<!-- moerun simulated cluster: %d nodes x %d ranks; NIC %.4g Gbit/s, %.4g us; on-node %.4g GB/s,
     %.4g us; topology %s; %.4g cores per node (jobs/smpi/platform.py, docs/simulation.md).
     1 Gf is one core: moerun charges its compute itself (sim_gflops per core). -->
<platform version="4.1">
  <cluster id="moe" prefix="node" radical="0-%d" suffix="" speed="%.6gGf" core="%d"
           bw="%.6gBps" lat="%.6gus" loopback_bw="%.6gBps" loopback_lat="%.6gus"%s/>
</platform>
""" % (a.nodes, a.ranks_per_node, nic, nlat, node, olat, topo, cores, a.nodes - 1, speed,
       ncore, bw_bps, nlat, node * 1e9, olat, extra)
    with open(os.path.join(a.out, "platform.xml"), "w") as f:
        f.write(xml)
    with open(os.path.join(a.out, "hostfile"), "w") as f:
        for n in range(a.nodes):
            for _ in range(a.ranks_per_node):
                f.write("node%d\n" % n)
    print("platform.py: %s/platform.xml and hostfile: %d nodes x %d ranks, NIC %.4g Gbit/s %.4g us, "
          "on-node %.4g GB/s, %s, %.4g cores per node" % (a.out, a.nodes, a.ranks_per_node, nic,
                                                         nlat, node, topo, cores))


if __name__ == "__main__":
    main()
