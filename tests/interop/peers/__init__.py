"""Real BitTorrent clients started on 127.0.0.1 for interop tests (fixtures in tests/interop/conftest.py).

Facts found by running them here (see each module for details):

* Who dials whom. libtorrent: ``peers=[(ip, port)]`` / ``add_peer`` (redialled every second).
  qBittorrent: ``add_peer`` (Web API ``torrents/addPeers``). aria2: cannot be handed a peer (no RPC for
  it, magnet ``x.pe`` ignored); the other side dials ``.address``, or aria2 dials peers a loopback tracker
  returns (``trackers=[url]``). Transmission 3.00: no RPC to add a peer and it never dials loopback
  peers from a tracker; the other side must dial ``.address``.
* Start-up: libtorrent ~0.1 s, aria2 ~0.1 s (then acts on a 1 s tick), Transmission ~0.2 s, qBittorrent
  ~0.2 s. Transmission re-evaluates interest and unchokes on a 10 s pulse, so a transfer with it
  starts 5-10 s after the connection; budget ~15 s for a few MiB.
* Listeners: all on 127.0.0.1 (Transmission also on [::1]); each client's sockets are read from /proc
  (``PeerProcess.listening_sockets`` / ``open_sockets``).
* Counters lag: libtorrent status every 0.5 s, qBittorrent ~1.5 s; poll with ``wait_status``.
"""
