"""Network namespaces joined by veth pairs, and the faults that act on them (nftables, tc).

One `Topology` per run, every name carrying the run's id so that runs never collide and a
cleanup removes exactly what this run made. The sidecar's namespace is the hub: one veth pair
to each of the simulator, Valkey and the receivers. The harness (the root namespace) has its own
pair to the simulator (truth, faults), to the sidecar (status) and to the receivers (counts), so
that a fault on the sidecar's links never blinds the judge.
"""

from __future__ import annotations

import ipaddress
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field

NODES = ("sc", "sim", "rds", "obs")
# (a, b): a veth pair between namespaces a and b ("root" is the harness' own namespace).
LINKS = (("sc", "sim"), ("sc", "rds"), ("sc", "obs"), ("root", "sim"), ("root", "sc"),
         ("root", "obs"))
TABLE = "chaos"


class NetnsUnavailable(RuntimeError):
    """This machine cannot make network namespaces (not root, no `ip`, no `nft`)."""


def sh(*args: str, netns: str | None = None, check: bool = True,
       stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    cmd = ["ip", "netns", "exec", netns, *args] if netns else list(args)
    result = subprocess.run(cmd, capture_output=True, text=True, input=stdin, timeout=30)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {result.stderr.strip() or result.returncode}")
    return result


def probe() -> str | None:
    """None when namespaces, veths and nftables work here; else why not."""
    for tool in ("ip", "nft", "tc"):
        if shutil.which(tool) is None:
            return f"`{tool}` not installed (Debian iproute2 / nftables)"
    name = f"chp-{secrets.token_hex(3)}"
    made = sh("ip", "netns", "add", name, check=False)
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.strip()}"
    try:
        nft = sh("nft", "add", "table", "inet", TABLE, netns=name, check=False)
        if nft.returncode != 0:
            return f"nftables does not work in a namespace: {nft.stderr.strip()}"
    finally:
        sh("ip", "netns", "del", name, check=False)
    return None


@dataclass
class Topology:
    run_id: str = field(default_factory=lambda: secrets.token_hex(2))
    octet: int = 0  # 10.77.<octet>.0/24 holds this run's /30 subnets
    addrs: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    made_ns: list[str] = field(default_factory=list)
    made_links: list[str] = field(default_factory=list)

    def ns(self, node: str) -> str:
        return f"ch{self.run_id}-{node}"

    def dev(self, a: str, b: str, side: str) -> str:
        """The interface of link (a, b) on `side` (a or b): `ch<id><a0><b0><side0>`, ≤ 15."""
        return f"ch{self.run_id}{a[:2]}{b[:2]}{side[:1]}"

    def addr(self, node: str, peer: str) -> str:
        """`node`'s address on its link to `peer`."""
        if (node, peer) in self.addrs:
            return self.addrs[(node, peer)][0]
        return self.addrs[(peer, node)][1]

    def up(self) -> Topology:
        self.octet = _free_octet()
        for node in NODES:
            sh("ip", "netns", "add", self.ns(node))
            self.made_ns.append(self.ns(node))
            sh("ip", "link", "set", "lo", "up", netns=self.ns(node))
        for index, (a, b) in enumerate(LINKS):
            self._link(index, a, b)
        return self

    def _link(self, index: int, a: str, b: str) -> None:
        net = ipaddress.ip_network(f"10.77.{self.octet}.{index * 4}/30")
        ip_a, ip_b = (str(h) for h in net.hosts())
        dev_a, dev_b = self.dev(a, b, "a"), self.dev(a, b, "b")
        sh("ip", "link", "add", dev_a, "type", "veth", "peer", "name", dev_b)
        self.made_links.append(dev_a)
        for node, dev, ip in ((a, dev_a, ip_a), (b, dev_b, ip_b)):
            where = None if node == "root" else self.ns(node)
            if where is not None:
                sh("ip", "link", "set", dev, "netns", where)
            sh("ip", "addr", "add", f"{ip}/30", "dev", dev, netns=where)
            sh("ip", "link", "set", dev, "up", netns=where)
        self.addrs[(a, b)] = (ip_a, ip_b)

    def down(self) -> None:
        """Remove what this run made (deleting a namespace deletes its veth ends)."""
        for name in reversed(self.made_ns):
            sh("ip", "netns", "del", name, check=False)
        for dev in self.made_links:  # root-side ends whose peer namespace is gone already
            sh("ip", "link", "del", dev, check=False)
        self.made_ns.clear()
        self.made_links.clear()

    # --- faults, on the sidecar's side of its link to `peer` ----------------------------

    def nft(self, peer: str, rule: str) -> None:
        """Both directions of the sidecar's link to `peer` get `rule` (e.g. "drop")."""
        dev = self.dev("sc", peer, "a")
        script = (f"table inet {TABLE} {{\n"
                  f" chain in_{peer} {{ type filter hook input priority -10; "
                  f"iifname \"{dev}\" {rule}; }}\n"
                  f" chain out_{peer} {{ type filter hook output priority -10; "
                  f"oifname \"{dev}\" {rule}; }}\n}}\n")
        sh("nft", "-f", "-", netns=self.ns("sc"), stdin=script)

    def nft_clear(self, peer: str) -> None:
        for chain in (f"in_{peer}", f"out_{peer}"):
            sh("nft", "delete", "chain", "inet", TABLE, chain, netns=self.ns("sc"), check=False)

    def shape(self, peer: str, rate: str) -> None:
        """tbf both ways: the sidecar's egress to `peer` and `peer`'s egress to the sidecar."""
        for node, dev in (("sc", self.dev("sc", peer, "a")), (peer, self.dev("sc", peer, "b"))):
            sh("tc", "qdisc", "add", "dev", dev, "root", "tbf", "rate", rate, "burst", "4kb",
               "latency", "400ms", netns=self.ns(node))

    def unshape(self, peer: str) -> None:
        for node, dev in (("sc", self.dev("sc", peer, "a")), (peer, self.dev("sc", peer, "b"))):
            sh("tc", "qdisc", "del", "dev", dev, "root", netns=self.ns(node), check=False)


def _free_octet() -> int:
    """A third octet of 10.77.x.0/24 that no route of this machine uses yet."""
    used = sh("ip", "-4", "route", "show").stdout + sh("ip", "-4", "addr", "show").stdout
    for _ in range(200):
        octet = secrets.randbelow(256)
        if f"10.77.{octet}." not in used:
            return octet
    raise RuntimeError("no free 10.77.x.0/24 for the chaos run's links")
