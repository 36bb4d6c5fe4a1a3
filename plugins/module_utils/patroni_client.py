# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""The one client of Patroni's REST API that every module of the collection
uses (patroni_config, patroni_switchover, haproxy_primary).

    api = PatroniClient.from_params(module.params)   # url, username, password, timeout, validate_certs, ca_path
    cluster = api.request("/cluster")                 # JSON answers come back parsed
    api.request("/switchover", "POST", {"leader": "pg-test-1", "candidate": "pg-test-2"})

Requests other than GET send the credentials (Patroni asks for them on its
unsafe endpoints only, ``restapi.authentication``). Every failure is a
:class:`PatroniError` whose message names the method, the URL and what to
check; ``status`` holds the HTTP code when Patroni answered one.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Mapping, Optional
from urllib.error import HTTPError, URLError

try:  # the module side has Ansible; the unit tests inject their own opener
    from ansible.module_utils.urls import open_url
except ImportError:  # pragma: no cover
    open_url = None

__all__ = ["PatroniError", "PatroniClient", "REST_ARGUMENT_SPEC"]

#: The connection options every module that talks to the REST API takes
#: (documented once, in plugins/doc_fragments/patroni_rest.py).
REST_ARGUMENT_SPEC: dict = {
    "url": {"type": "str", "default": "http://127.0.0.1:8008"},
    "username": {"type": "str"},
    "password": {"type": "str", "no_log": True},
    "timeout": {"type": "int", "default": 10},
    "validate_certs": {"type": "bool", "default": True},
    "ca_path": {"type": "path"},
}


class PatroniError(Exception):
    """A request that failed; ``status`` is the HTTP code Patroni answered
    (None when it did not answer)."""

    def __init__(self, msg: str, status: Optional[int] = None):
        super().__init__(msg)
        self.status = status


def _text(data: Any) -> str:
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else (data or "")


class PatroniClient:
    """Requests to one member's REST API at ``url`` (``https://host:8008``,
    its certificate verified against ``ca_path``; ``http://`` with
    ``patroni_ssl_enabled: false``)."""

    def __init__(
        self,
        url: str,
        username: Optional[str] = None,
        password: Optional[str] = None,
        timeout: float = 10,
        validate_certs: bool = True,
        opener: Optional[Callable[..., Any]] = None,
        ca_path: Optional[str] = None,
    ):
        self.url = url.rstrip("/")
        self.username, self.password = username, password
        self.timeout, self.validate_certs = timeout, validate_certs
        self.ca_path = ca_path
        self.opener = opener or open_url

    @classmethod
    def from_params(
        cls, params: Mapping[str, Any], url: Optional[str] = None, opener: Optional[Callable[..., Any]] = None
    ) -> "PatroniClient":
        """A client from a module's REST_ARGUMENT_SPEC options (``url``
        overrides ``params['url']``)."""
        return cls(
            url or params["url"],
            params.get("username"),
            params.get("password"),
            params.get("timeout", 10),
            params.get("validate_certs", True),
            opener,
            params.get("ca_path"),
        )

    def request(
        self,
        path: str,
        method: str = "GET",
        body: Any = None,
        auth: Optional[bool] = None,
        timeout: Optional[float] = None,
    ) -> Any:
        """Send one request; the answer parsed as JSON when it is JSON, else
        its text (``{}`` when empty). ``auth`` defaults to "not a GET"."""
        url = self.url + path
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body)
            headers["Content-Type"] = "application/json"
        kwargs: dict = {}
        if self.ca_path:
            kwargs["ca_path"] = self.ca_path
        if (method != "GET" if auth is None else auth) and self.username is not None:
            kwargs.update(url_username=self.username, url_password=self.password, force_basic_auth=True)
        try:
            resp = self.opener(
                url,
                data=data,
                method=method,
                headers=headers,
                timeout=self.timeout if timeout is None else timeout,
                validate_certs=self.validate_certs,
                **kwargs,
            )
            text = _text(resp.read())
        except HTTPError as exc:
            detail = _text(exc.read() if hasattr(exc, "read") else b"").strip()
            hint = "; set username and password to restapi.authentication of the cluster" if exc.code == 401 else ""
            raise PatroniError(
                "%s %s answered HTTP %s: %s%s" % (method, url, exc.code, detail or str(exc), hint), exc.code
            ) from exc
        except (URLError, OSError, ValueError) as exc:
            raise PatroniError(
                "%s %s failed: %s; is Patroni running and its REST API reachable?" % (method, url, exc)
            ) from exc
        if not text.strip():
            return {}
        if text.lstrip().startswith(("{", "[")):
            try:
                return json.loads(text)
            except ValueError:
                pass
        return text
