"""Private (layer 4, keys, of docs/ARCHITECTURE.md): keys and credentials; the API is ``aes_hmac``.

``keys`` holds ``Key`` and ``PasswordKey``, ``credentials`` the one secret rule (``to_credential``)
and ``BatchCredential`` (what crosses a process boundary), ``keyring`` the ``Keyring``.
"""
