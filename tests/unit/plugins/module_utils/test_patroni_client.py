# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""plugins/module_utils/patroni_client.py: the one REST API client, with an
injected opener (the real API is exercised by every Molecule scenario)."""

from __future__ import annotations

import io
import json
from urllib.error import HTTPError, URLError

import pytest

from ansible_collections.pigpen.pgsql.plugins.module_utils.patroni_client import (
    REST_ARGUMENT_SPEC,
    PatroniClient,
    PatroniError,
)


class Opener:
    def __init__(self, answer=b"{}", error=None):
        self.answer, self.error, self.calls = answer, error, []

    def __call__(self, url, **kwargs):
        self.calls.append((url, kwargs))
        if self.error:
            raise self.error
        return io.BytesIO(self.answer)


def client(opener, **kw):
    params = {
        "url": "http://10.0.0.1:8008/",
        "username": "postgres",
        "password": "s3cret",
        "timeout": 7,
        "validate_certs": True,
    }
    params.update(kw)
    return PatroniClient.from_params(params, opener=opener)


@pytest.mark.parametrize(
    "answer, parsed",
    [
        (b'{"members": []}', {"members": []}),
        (b"[1, 2]", [1, 2]),
        (b"", {}),
        (b"  \n", {}),
        (b"Successfully switched over", "Successfully switched over"),
        (b"{not json", "{not json"),
    ],
)
def test_answers_come_back_parsed_when_json(answer, parsed):
    assert client(Opener(answer)).request("/cluster") == parsed


def test_get_sends_no_credentials_and_other_methods_do():
    opener = Opener()
    api = client(opener)
    api.request("/cluster")
    api.request("/switchover", "POST", {"leader": "a", "candidate": "b"})
    (url_get, get), (url_post, post) = opener.calls
    assert url_get == "http://10.0.0.1:8008/cluster" and "url_username" not in get
    assert get["timeout"] == 7 and get["validate_certs"] is True and get["data"] is None
    assert url_post == "http://10.0.0.1:8008/switchover"
    assert (post["url_username"], post["url_password"], post["force_basic_auth"]) == ("postgres", "s3cret", True)
    assert json.loads(post["data"]) == {"leader": "a", "candidate": "b"}
    assert post["headers"]["Content-Type"] == "application/json"


def test_no_username_sends_no_credentials():
    opener = Opener()
    client(opener, username=None, password=None).request("/config", "PATCH", {"ttl": 30})
    assert "url_username" not in opener.calls[0][1]


def test_http_errors_name_method_url_code_and_the_fix():
    err = HTTPError("http://10.0.0.1:8008/config", 401, "Unauthorized", {}, io.BytesIO(b"no auth"))
    with pytest.raises(
        PatroniError,
        match=r"^PATCH http://10.0.0.1:8008/config answered HTTP 401: "
        r"no auth; set username and password",
    ) as exc:
        client(Opener(error=err)).request("/config", "PATCH", {})
    assert exc.value.status == 401
    err = HTTPError("u", 503, "Service Unavailable", {}, io.BytesIO(b""))
    with pytest.raises(PatroniError, match="answered HTTP 503: HTTP Error 503") as exc:
        client(Opener(error=err)).request("/primary")
    assert exc.value.status == 503


@pytest.mark.parametrize("error", [URLError("refused"), OSError("timed out"), ValueError("bad url")])
def test_unreachable_says_what_to_check(error):
    with pytest.raises(PatroniError, match=r"^GET http://10.0.0.1:8008/cluster failed: .*is Patroni running") as exc:
        client(Opener(error=error)).request("/cluster")
    assert exc.value.status is None


def test_the_argument_spec_hides_the_password_and_matches_the_doc_fragment():
    from ansible_collections.pigpen.pgsql.plugins.doc_fragments.patroni_rest import ModuleDocFragment
    import yaml

    doc = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]
    assert REST_ARGUMENT_SPEC["password"]["no_log"] is True
    assert set(doc) == set(REST_ARGUMENT_SPEC)
    for name, spec in REST_ARGUMENT_SPEC.items():
        assert doc[name]["type"] == spec["type"]
        assert doc[name].get("default") == spec.get("default")
