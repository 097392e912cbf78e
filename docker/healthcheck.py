"""Container healthcheck for the web image: GET /health on the local gunicorn.

Exit 0 only on 200 (database, cache and broker all answer); anything else exits 1 and
prints why, which `docker inspect` shows. Slim images have no curl, hence urllib.

Django answers 400 to a Host header it does not allow, and 127.0.0.1 is rarely in
DJANGO_ALLOWED_HOSTS, so the request carries the first allowed host instead
(".example.com" becomes "example.com"; "*" becomes "localhost"). /health is exempt from
the HTTPS redirect (SECURE_REDIRECT_EXEMPT), so plain HTTP is fine.
"""

import os
import sys
import urllib.error
import urllib.request

URL = "http://127.0.0.1:8000/health"


def host_header() -> str:
    first = os.environ.get("DJANGO_ALLOWED_HOSTS", "").split(",")[0].strip()
    if not first or first == "*":
        return "localhost"
    return first.lstrip(".")


def main() -> int:
    request = urllib.request.Request(URL, headers={"Host": host_header()})
    try:
        with urllib.request.urlopen(request, timeout=8) as response:
            return 0 if response.status == 200 else 1
    except urllib.error.HTTPError as exc:
        print(f"/health answered {exc.code}: {exc.read()[:500]!r}", file=sys.stderr)
    except OSError as exc:
        print(f"/health unreachable: {exc}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
