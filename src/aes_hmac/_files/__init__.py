"""Private (layer 7, files, of docs/ARCHITECTURE.md): files and folders; the API is ``aes_hmac``.

``lifecycle`` and ``atomic`` are the writer rule and atomic output, ``fileobj`` is ``open()``,
``files`` whole files and key-slot edits, ``manifest`` the folder manifest's bytes (format only),
``walk``, ``tree_manifest`` and ``tree`` the folder runs.
"""
