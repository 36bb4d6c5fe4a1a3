# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""No problem message shows a secret: values of secret fields are hidden,
and so is every secret inside a structured value."""

from __future__ import annotations

import pytest

from ansible_collections.pigpen.pgsql.plugins.module_utils import model as model_mod
from ansible_collections.pigpen.pgsql.plugins.module_utils import validate
from ansible_collections.pigpen.pgsql.plugins.module_utils.errors import HIDDEN, Problem, is_secret_name, mask_secrets
from inv import build, cluster

MARK = "Marker.Secret.7f3a"


@pytest.mark.parametrize(
    "name, secret",
    [
        ("pg_replication_password", True),
        ("pg_users[0](dbuser_app).password", True),
        ("pgbackrest_repo.minio.s3_key_secret", True),
        ("pgbackrest_repo.minio.cipher_pass", True),
        ("pgbackrest_repo.minio.s3_key", True),
        ("minio_secret_key", True),
        ("pg_dbsu_password", True),
        ("pg_users[2](secret_app)", False),  # the entry's name is not a field
        ("pg_users[2](secret_app).name", False),
        ("pg_parameters.password_encryption", False),
        ("pg_pwd_enc", False),
        ("pg_users", False),
        (None, False),
    ],
)
def test_secret_names(name, secret):
    assert is_secret_name(name) is secret


def test_mask_nested_values():
    value = [
        {"name": "a", "password": MARK, "roles": ["x"]},
        {"name": "b", "parameters": {"search_path": "a"}},
        {"minio": {"s3_key": MARK, "path": "/p", "cipher_pass": MARK}},
    ]
    assert mask_secrets(value) == [
        {"name": "a", "password": HIDDEN, "roles": ["x"]},
        {"name": "b", "parameters": {"search_path": "a"}},
        {"minio": {"s3_key": HIDDEN, "path": "/p", "cipher_pass": HIDDEN}},
    ]
    assert mask_secrets({"password": None}) == {"password": None}


def test_problem_hides_secret_values():
    p = Problem("c", "h", "pg_users[0](x).password", MARK, "is odd", "fix it")
    assert MARK not in str(p) and MARK not in repr(p.as_dict())
    p = Problem("c", None, "pg_users", [{"name": "x", "password": MARK}], "w", "f")
    assert MARK not in str(p) and p.value == [{"name": "x", "password": HIDDEN}]


def test_differing_users_show_no_password():
    """pg_users set per host, differently: the message names the setting and
    both values, without the passwords."""
    hosts = {
        "10.10.10.11": {"pg_seq": 1, "pg_role": "primary", "pg_users": [{"name": "app", "password": MARK + "1"}]},
        "10.10.10.12": {"pg_seq": 2, "pg_role": "replica", "pg_users": [{"name": "app", "password": MARK + "2"}]},
    }
    found = validate.problems(model_mod.load(*build(cluster("pg-test", hosts))))
    text = "\n".join(str(p) for p in found) + repr([p.as_dict() for p in found])
    assert "pg_users" in text
    assert MARK not in text
