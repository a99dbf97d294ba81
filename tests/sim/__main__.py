"""python -m tests.sim [leechers]: one swarm without and one with super-seeding, reported."""

from __future__ import annotations

import sys
from dataclasses import replace

from tests.sim.swarm import SwarmConfig, simulate


def main() -> None:
    config = SwarmConfig(leechers=int(sys.argv[1]) if len(sys.argv) > 1 else 200)
    print(simulate(config).report())
    print(simulate(replace(config, seeder_upload_bps=(config.unchoke_slots + 1) * config.link.rate_bps)).report())


if __name__ == "__main__":
    main()
