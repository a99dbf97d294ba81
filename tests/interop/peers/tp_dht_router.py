"""A torrentpy DHT node alone on a loopback address, as the entry point of a test's DHT.

    python -m tests.interop.peers.tp_dht_router --host 127.0.0.1 --port-file F

Binds any free UDP port on HOST, writes it to F once the socket is open, and answers DHT queries (no
bootstrap, no per-address limit: every test client shares 127.0.0.1) until SIGTERM. Clients that take a
single DHT entry point (aria2 `--dht-entry-point`) and torrentpy (`--dht-bootstrap`) meet on it.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path

from torrentpy.net.dht import DhtService


async def serve(host: str, port_file: Path, state: Path) -> None:
    dht = DhtService(bind=host, bootstrap=[], state_path=state, rate_limit=False)
    await dht.start()
    tmp = port_file.with_suffix(".tmp")
    tmp.write_text(str(dht.port))
    tmp.replace(port_file)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await stop.wait()
    finally:
        await dht.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port-file", type=Path, required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port_file, args.port_file.with_name("router-dht.dat")))


if __name__ == "__main__":
    main()
