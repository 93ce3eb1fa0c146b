"""``python -m aes_hmac``: the same command line as the ``aes-hmac`` script."""

from .cli import entry

if __name__ == "__main__":
    entry()
