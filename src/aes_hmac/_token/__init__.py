"""Private (layer 3, formats, of docs/ARCHITECTURE.md): the token formats; the API is ``aes_hmac``.

``format`` holds what every token version shares, ``v1`` the version 1 layout, ``codec`` the text
form, the ``FORMATS`` registry and the version dispatch.
"""
