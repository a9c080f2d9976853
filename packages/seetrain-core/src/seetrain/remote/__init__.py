"""Remote mode: the local store is the write-ahead log, and the upload to a team server is a
replay of it (see docs/remote.md).

* :mod:`seetrain.remote.client` -- the HTTP client of the server's ingest API (retries with
  backoff and jitter, ``Retry-After`` honoured, a circuit breaker);
* :mod:`seetrain.remote.uploader` -- the upload of one run from a store directory, from a
  cursor kept in the store itself (``seetrain sync``);
* :mod:`seetrain.remote.plugin` -- the built-in uploader plugin of ``mode="remote"`` runs;
* :mod:`seetrain.remote.credentials` -- ``seetrain login``'s credentials file.
"""

from __future__ import annotations

#: the name under which the uploader's counts appear in get_integration_error_stats()
INTEGRATION = "seetrain.remote"
