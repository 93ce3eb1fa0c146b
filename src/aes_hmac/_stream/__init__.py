"""Private (layer 6, streams, of docs/ARCHITECTURE.md): format and engine; the API is ``aes_hmac``.

``format`` is the stream layout in bytes (below the keys: it imports only layers 1-3), ``io`` the
low-level I/O helpers, ``parallel`` the workers, ``engine`` encryption and decryption of a whole
stream, ``readahead`` and ``seekable`` random access.
"""
