"""``node.toml``: every path in it is taken from its own directory, wherever genofed runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from genofed.aai import Issuer
from genofed.cli.audit import audit_database
from genofed.errors import InputError
from genofed.node.app import create_app
from genofed.node.settings import NodeSettings, load_settings
from genofed.node.setup import init_node
from genofed.protocol.messages import API_PREFIX
from genofed.sim import SimulationResult
from tests.conftest import passport_for

# Every key of node.toml that holds a path, each given relative to node.toml's directory.
RELATIVE = """\
[node]
name = "EE"
dataset_id = "genofed:EE"
state_dir = "state"
identity_key = "keys/identity.pem"

[tls]
certificate = "tls/cert.pem"
key = "tls/key.pem"

[access]
trusted_issuers = ["../../aai/jwks.json", "brokers/ls-aai.json"]

[data]
bfile = "../../cohorts/EE/genotypes"
phenotypes = "../../cohorts/EE/phenotypes.tsv"

[aggregation]
peers = "peers"

[audit]
database = "logs/audit.sqlite3"
"""

MINIMAL = """\
[node]
name = "EE"
dataset_id = "genofed:EE"

[data]
bfile = "../../cohorts/EE/genotypes"
phenotypes = "../../cohorts/EE/phenotypes.tsv"
"""


def write_config(site: Path, text: str) -> Path:
    """Write ``site/nodes/EE/node.toml``; return its path."""
    config = site / "nodes" / "EE" / "node.toml"
    config.parent.mkdir(parents=True)
    config.write_text(text)
    return config


def relative_to(config: Path, directory: Path) -> Path:
    """``config`` as a relative path from ``directory``, with ``..`` where needed."""
    return Path(os.path.relpath(config, directory))


def test_load_settings__resolves_every_path_from_the_config_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    config = write_config(site, RELATIVE)
    elsewhere = tmp_path / "elsewhere" / "deeper"
    elsewhere.mkdir(parents=True)
    monkeypatch.chdir(elsewhere)
    settings = load_settings(Path("../../site/nodes/EE/node.toml"))
    here = config.parent.resolve()
    root = site.resolve()
    assert settings.node.state_dir == here / "state"
    assert settings.node.identity_key == here / "keys" / "identity.pem"
    assert settings.tls is not None
    assert settings.tls.certificate == here / "tls" / "cert.pem"
    assert settings.tls.key == here / "tls" / "key.pem"
    assert settings.access.trusted_issuers == [
        root / "aai" / "jwks.json",
        here / "brokers" / "ls-aai.json",
    ]
    assert settings.data.bfile == root / "cohorts" / "EE" / "genotypes"
    assert settings.data.phenotypes == root / "cohorts" / "EE" / "phenotypes.tsv"
    assert settings.aggregation.peers == here / "peers"
    assert settings.audit.database == str(here / "logs" / "audit.sqlite3")


@pytest.mark.parametrize(
    "working_directory",
    ["site", "site/nodes/EE", "site/cohorts", "."],
    ids=["above", "beside", "sibling", "outside"],
)
def test_load_settings__puts_the_default_state_dir_beside_node_toml(
    working_directory: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path / "site", MINIMAL)
    (tmp_path / "site" / "cohorts").mkdir()
    monkeypatch.chdir(tmp_path / working_directory)
    settings = load_settings(relative_to(config, Path.cwd()))
    assert settings.node.state_dir == config.parent.resolve()
    assert settings.data.bfile == (tmp_path / "site" / "cohorts" / "EE" / "genotypes").resolve()
    assert settings.access.trusted_issuers == []
    assert settings.audit.database is None


def test_load_settings__keeps_absolute_paths_and_database_urls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    state = tmp_path / "var" / "genofed"
    url = "postgresql://genofed@db.example:5432/audit"
    config = write_config(
        tmp_path / "site",
        f'[node]\nname = "EE"\ndataset_id = "genofed:EE"\nstate_dir = "{state}"\n\n'
        f'[data]\nbfile = "{data / "genotypes"}"\nphenotypes = "{data / "phenotypes.tsv"}"\n\n'
        f'[audit]\ndatabase = "{url}"\n',
    )
    monkeypatch.chdir(config.parent)
    settings = load_settings(Path("node.toml"))
    assert settings.node.state_dir == state
    assert settings.data.bfile == data / "genotypes"
    assert settings.audit.database == url


def test_load_settings__agrees_with_node_audit_on_the_audit_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path / "site", MINIMAL)
    monkeypatch.chdir(tmp_path / "site")
    relative = Path("nodes/EE/node.toml")
    state_dir = load_settings(relative).node.state_dir
    assert state_dir is not None
    assert audit_database(relative) == state_dir / "audit.sqlite3"
    config.write_text(RELATIVE)
    assert audit_database(relative) == Path(str(load_settings(relative).audit.database))


def test_node_settings__refuses_relative_paths_that_were_not_loaded(tmp_path: Path) -> None:
    document = {
        "node": {"name": "EE", "dataset_id": "genofed:EE", "state_dir": "state"},
        "data": {"bfile": str(tmp_path / "genotypes"), "phenotypes": str(tmp_path / "p.tsv")},
    }
    with pytest.raises(ValueError, match="paths must be absolute after loading, got state"):
        NodeSettings.model_validate(document)


def test_load_settings__names_the_file_and_key_of_an_invalid_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(tmp_path / "site", MINIMAL.replace('name = "EE"', 'name = "EE"\nstate_dir = 3'))
    monkeypatch.chdir(tmp_path / "site")
    with pytest.raises(InputError, match=r"^nodes/EE/node.toml: node.state_dir: "):
        load_settings(Path("nodes/EE/node.toml"))


def test_create_app__serves_from_a_relative_config_and_creates_its_state_dir(
    cohorts: SimulationResult, issuer: Issuer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    init = init_node(
        "EE",
        bfile=cohorts.out / "EE" / "genotypes",
        phenotypes=cohorts.out / "EE" / "phenotypes.tsv",
        out=tmp_path / "nodes" / "EE",
        trusted_issuers=[issuer.jwks],
    )
    text = init.config.read_text().replace(
        'dataset_id = "genofed:EE"', 'dataset_id = "genofed:EE"\nstate_dir = "state"'
    )
    init.config.write_text(text)
    monkeypatch.chdir(tmp_path)
    settings = load_settings(Path("nodes/EE/node.toml"))
    headers = {"Authorization": f"Bearer {passport_for(issuer, 'genofed:EE')}"}
    with TestClient(
        create_app(settings), base_url=f"http://node{API_PREFIX}", headers=headers
    ) as client:
        assert client.get("/dataset").json()["genotyped_samples"] == 400
    state = tmp_path / "nodes" / "EE" / "state"
    assert {p.name for p in state.iterdir()} >= {"audit.sqlite3", "disclosure.sqlite3"}
