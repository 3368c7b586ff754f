"""Service URLs as logs and error messages may show them: Redis's and PostgreSQL's, without their passwords."""

from urllib.parse import urlsplit, urlunsplit

__all__ = ["safe_url"]


def safe_url(url: str) -> str:
    """`url` without its password (after the user name, or as a `password=` parameter).

    >>> safe_url("redis://:hunter2@cache:6379/0"), safe_url("postgresql://sq@db/x?password=s3cret")
    ('redis://:***@cache:6379/0', 'postgresql://sq@db/x?password=***')
    """
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = f"{parts.username or ''}:***@{netloc.rpartition('@')[2]}"
    query = "&".join("password=***" if item.lower().startswith("password=") else item
                     for item in parts.query.split("&")) if parts.query else ""
    return urlunsplit(parts._replace(netloc=netloc, query=query))
