"""The marketers' console at PREFIX/admin (docs/admin.md): server-rendered pages behind a
sign-in, for users created with ``touchpoint admin user``.

- ``routes.py``: the mount and the list of pages; ``guard.py``: the console's state,
  ``require(role)``, CSRF and origin checks, forms; ``sessions.py``: the signed session cookie;
  ``users.py``: roles and argon2id passwords; ``layout.py``: pages, navigation, templates,
  security headers; ``texts.py``: English and German; ``signin.py``: sign-in, sign-out,
  language; one module per page family (``results.py``).
"""
