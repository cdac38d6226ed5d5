"""Provenance as data and as signatures, with real keys: the statement a push writes, the claims
a deploy reads back, the DSSE envelope, the trust settings, the policy, `invoke keygen`.

Every parser of outside input here (a statement, an envelope, a Dockerfile) gets property tests:
any input is a verdict or a clear refusal, never a traceback.
"""

from __future__ import annotations

import base64
import json
import stat
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aegis_delivery.config import load_config, parse_config
from aegis_delivery.config_trust import ProvenancePolicy
from aegis_delivery.errors import ConfigError, ExitCode, InputError, Untrusted
from aegis_delivery.masking import Masker
from aegis_delivery.release import attestation, dockerfile, keygen, provenance, signing
from aegis_delivery.runner import Runner
from tests.conftest import REPOSITORY, RecordingConsole
from tests.test_outside_input import JSON, QUICK

DIGEST = "sha256:" + "a" * 64
AMD64 = "sha256:" + "b" * 64
ARM64 = "sha256:" + "c" * 64
ACTIONS = {
    "GITHUB_ACTIONS": "true",
    "GITHUB_WORKFLOW_REF": "aegistrader/aegistrader/.github/workflows/ci-cd.yml@refs/heads/main",
    "GITHUB_REPOSITORY": "aegistrader/aegistrader",
    "GITHUB_RUN_ID": "4242",
    "GITHUB_RUN_ATTEMPT": "2",
}


def build(**changes: object) -> provenance.Build:
    made = provenance.Build(
        name="ghcr.io/aegistrader/aegistrader/monitor-api",
        digest=DIGEST,
        platform_digests={"linux/amd64": AMD64, "linux/arm64": ARM64},
        repository="aegistrader/aegistrader",
        commit="0123456789abcdef0123456789abcdef01234567",
        ref="refs/heads/main",
        event="push",
        dockerfile="apps/monitor-api/Dockerfile",
        platforms=("linux/amd64", "linux/arm64"),
        build_arg_names=("VERSION", "REVISION", "BASE_IMAGE"),
        bases=(provenance.BaseImage("python:3.13-slim-bookworm", "sha256:" + "d" * 64),),
        builder=provenance.Builder.detect(ACTIONS),
        started="2026-12-07T10:00:00Z",
    )
    return replace(made, **changes)  # type: ignore[arg-type]


def test_the_statement_names_every_digest_the_builder_and_no_build_arg_value() -> None:
    document = provenance.statement(build())
    assert document["_type"] == "https://in-toto.io/Statement/v1"
    assert document["predicateType"] == "https://slsa.dev/provenance/v1"
    digests = {subject["digest"]["sha256"] for subject in document["subject"]}
    assert digests == {"a" * 64, "b" * 64, "c" * 64}  # the index and each platform
    definition = document["predicate"]["buildDefinition"]
    assert definition["externalParameters"]["buildArgs"] == ["BASE_IMAGE", "REVISION", "VERSION"]
    assert definition["externalParameters"]["workflow"] == {
        "path": ".github/workflows/ci-cd.yml", "ref": "refs/heads/main",
    }  # fmt: skip
    dependencies = definition["resolvedDependencies"]
    assert dependencies[0] == {
        "uri": "git+https://github.com/aegistrader/aegistrader@refs/heads/main",
        "digest": {"gitCommit": "0123456789abcdef0123456789abcdef01234567"},
    }
    assert dependencies[1]["uri"] == "docker-image://python:3.13-slim-bookworm"
    details = document["predicate"]["runDetails"]
    assert details["builder"]["id"] == (
        "https://github.com/aegistrader/aegistrader/.github/workflows/ci-cd.yml@refs/heads/main"
    )
    assert details["metadata"]["invocationId"].endswith("/actions/runs/4242/attempts/2")
    claims = provenance.claims(json.loads(json.dumps(document)))
    assert claims.subjects == {DIGEST, AMD64, ARM64} and claims.ref == "refs/heads/main"


def test_a_laptop_build_says_local() -> None:
    assert provenance.Builder.detect({}).id == "local"
    assert provenance.Builder.detect({**ACTIONS, "GITHUB_ACTIONS": ""}).id == "local"
    document = provenance.statement(build(builder=provenance.Builder.detect({})))
    assert "workflow" not in document["predicate"]["buildDefinition"]["externalParameters"]


def test_each_refusal_names_what_is_wrong() -> None:
    claims = provenance.claims(provenance.statement(build()))
    ok = provenance.refusal(claims, DIGEST, "aegistrader/aegistrader", True, ())
    assert ok is None
    other = provenance.refusal(claims, "sha256:" + "e" * 64, "aegistrader/aegistrader", True, ())
    assert other is not None and "not sha256:eee" in other
    fork = provenance.refusal(claims, DIGEST, "someone/fork", True, ())
    assert fork == "it was built from aegistrader/aegistrader, not someone/fork"
    branch = provenance.refusal(claims, DIGEST, "aegistrader/aegistrader", False, ("refs/tags/v*",))
    assert branch == "it was built from refs/heads/main; this environment takes refs/tags/v*"


def test_the_policy_takes_the_default_branch_and_release_tags_only() -> None:
    policy = ProvenancePolicy(
        require_provenance=True, provenance_refs=("refs/heads/{default_branch}", "refs/tags/v*")
    )
    assert policy.allows_ref("refs/heads/main", "main")
    assert policy.allows_ref("refs/tags/v1.2.3", "main")
    assert not policy.allows_ref("refs/heads/feature-x", "main")
    assert not policy.allows_ref("refs/pull/7/merge", "main")
    assert ProvenancePolicy().allows_ref("refs/heads/anything", "main")


@QUICK
@given(JSON)
def test_any_statement_shape_is_claims_or_a_clear_refusal(document: object) -> None:
    try:
        found = provenance.claims(document)
    except Untrusted as refused:
        assert refused.message.startswith("the provenance statement is malformed (at ")
        assert refused.exit_code == ExitCode.UNTRUSTED
    else:
        assert found.subjects


@QUICK
@given(st.sampled_from(["_type", "predicateType", "subject", "predicate"]), JSON)
def test_a_statement_with_one_part_replaced_is_refused_cleanly(key: str, value: object) -> None:
    document = provenance.statement(build())
    document[key] = value
    try:
        provenance.claims(document)
    except Untrusted as refused:
        assert "malformed" in refused.message


@pytest.fixture(scope="module")
def pair() -> signing.KeyPair:
    return signing.generate()


def trusted(tmp_path: Path, *pairs: signing.KeyPair) -> list[signing.TrustedKey]:
    paths = []
    for number, made in enumerate(pairs):
        path = tmp_path / f"key-{number}.pub"
        path.write_text(made.public_pem)
        paths.append(path)
    return signing.trusted_keys(tuple(paths), tmp_path)


def envelope_of(payload: bytes, made: signing.KeyPair) -> bytes:
    signer = signing.load_signer(made.private_pem, "AEGIS_SIGNING_KEY")
    return signing.sign(payload, provenance.IN_TOTO_PAYLOAD, signer)


@pytest.mark.parametrize("kind", ["ecdsa", "ed25519"])
def test_a_signed_envelope_opens_with_its_public_key_only(kind: str, tmp_path: Path) -> None:
    made, stranger = signing.generate(kind), signing.generate(kind)  # type: ignore[arg-type]
    sealed = envelope_of(b'{"a": 1}', made)
    document = json.loads(sealed)
    assert document["payloadType"] == "application/vnd.in-toto+json"
    assert base64.b64decode(document["payload"]) == b'{"a": 1}'
    payload, key = signing.open_envelope(
        sealed, provenance.IN_TOTO_PAYLOAD, trusted(tmp_path, stranger, made), tmp_path
    )
    assert payload == b'{"a": 1}' and key.name == "key-1.pub"
    with pytest.raises(Untrusted, match=r"a key that is not trusted \(trusted: key-0.pub\)"):
        signing.open_envelope(
            sealed, provenance.IN_TOTO_PAYLOAD, trusted(tmp_path, stranger), tmp_path
        )


def test_a_changed_statement_is_named_as_changed(pair: signing.KeyPair, tmp_path: Path) -> None:
    document = json.loads(envelope_of(b'{"a": 1}', pair))
    document["payload"] = base64.b64encode(b'{"a": 2}').decode()
    with pytest.raises(Untrusted, match="changed after it was signed"):
        signing.open_envelope(
            json.dumps(document).encode(), provenance.IN_TOTO_PAYLOAD, trusted(tmp_path, pair),
            tmp_path,
        )  # fmt: skip
    document["signatures"] = []
    with pytest.raises(Untrusted, match="carries no signature"):
        signing.open_envelope(
            json.dumps(document).encode(), provenance.IN_TOTO_PAYLOAD, trusted(tmp_path, pair),
            tmp_path,
        )  # fmt: skip
    document["payloadType"] = "text/plain"
    with pytest.raises(Untrusted, match="payload type is 'text/plain'"):
        signing.open_envelope(
            json.dumps(document).encode(), provenance.IN_TOTO_PAYLOAD, trusted(tmp_path, pair),
            tmp_path,
        )  # fmt: skip


@QUICK
@given(st.binary(max_size=80) | JSON.map(lambda v: json.dumps(v).encode()))
def test_any_bytes_as_an_envelope_are_refused_cleanly(raw: bytes) -> None:
    keys = [signing.TrustedKey(Path("k.pub"), PUBLIC_PEM)]
    with pytest.raises(Untrusted):
        signing.open_envelope(raw, provenance.IN_TOTO_PAYLOAD, keys, Path())


PUBLIC_PEM = signing.generate().public_pem


@QUICK
@given(JSON)
def test_any_envelope_shape_is_refused_cleanly(signatures: object) -> None:
    raw = json.dumps(
        {"payload": "e30=", "payloadType": provenance.IN_TOTO_PAYLOAD, "signatures": signatures}
    ).encode()
    with pytest.raises(Untrusted):
        signing.open_envelope(
            raw, provenance.IN_TOTO_PAYLOAD, [signing.TrustedKey(Path("k.pub"), PUBLIC_PEM)],
            Path(),
        )  # fmt: skip


def test_a_bad_signing_key_names_its_variable_never_its_content() -> None:
    for text in ("not a key", PUBLIC_PEM, signing.generate().private_pem.replace("A", "B", 3)):
        with pytest.raises(InputError) as raised:
            signing.load_signer(text, "AEGIS_SIGNING_KEY")
        assert "AEGIS_SIGNING_KEY" in raised.value.message and text not in raised.value.message
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
    )

    p384 = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
    )
    with pytest.raises(InputError, match="neither ECDSA P-256 nor Ed25519"):
        signing.load_signer(p384.decode(), "AEGIS_SIGNING_KEY")


def test_trusted_keys_missing_or_broken_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="lists no public key"):
        signing.trusted_keys((), tmp_path)
    with pytest.raises(ConfigError, match=r"trusted key keys/x.pub cannot be read.*invoke keygen"):
        signing.trusted_keys((tmp_path / "keys" / "x.pub",), tmp_path)
    (tmp_path / "bad.pub").write_text(
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
    )
    with pytest.raises(ConfigError, match=r"bad\.pub is not a PEM public key"):
        signing.trusted_keys((tmp_path / "bad.pub",), tmp_path)


def configured(**trust: object) -> dict[str, object]:
    import tomllib

    document = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())
    document["tool"]["aegis"]["trust"] = trust
    return document


@pytest.mark.parametrize(
    ("trust", "environment", "message"),
    [
        ({"keys": "keys/a.pub"}, {}, r"\[tool.aegis.trust.keys\] must be a list"),
        ({"keys": ["/etc/a.pub"]}, {}, r"trust.keys.0\] must be a path inside the repository"),
        ({"signing_key_env": "aegis key"}, {}, r"signing_key_env\] must be an environment"),
        ({"key": []}, {}, r"has unknown key 'key'"),
        ({}, {"require_provenance": "yes"}, r"staging.require_provenance\] must be true or false"),
        ({}, {"provenance_refs": ["main"]}, r"staging.provenance_refs\] must be a list of git ref"),
        ({}, {"provenance_ref": []}, r"has unknown key 'provenance_ref'"),
    ],
)
def test_trust_settings_name_the_wrong_key(
    trust: dict[str, object], environment: dict[str, object], message: str
) -> None:
    document = configured(**trust)
    document["tool"]["aegis"]["environments"]["staging"].update(environment)  # type: ignore[index]
    with pytest.raises(ConfigError, match=message):
        parse_config(document, REPOSITORY / "pyproject.toml")


def test_the_project_requires_provenance_for_staging_and_production() -> None:
    config = load_config(REPOSITORY / "pyproject.toml")
    staging, production = (config.environments[n].provenance for n in ("staging", "production"))
    assert staging.require_provenance and staging.allow_unverified
    assert production.require_provenance and not production.allow_unverified
    assert not production.allows_ref("refs/heads/feature-x", config.default_branch)
    assert config.trust.keys == (REPOSITORY / "keys" / "aegis-release.pub",)
    with pytest.raises(InputError, match="--allow-unverified is not allowed for production"):
        attestation.check_override(config, "production", True)
    attestation.check_override(config, "staging", True)


def test_dockerfile_bases_follow_the_global_args() -> None:
    text = (REPOSITORY / "apps/monitor-ui/Dockerfile").read_text()
    assert dockerfile.base_images(text, {}) == ("node:24-bookworm-slim",)
    assert dockerfile.base_images(text, {"NODE_VERSION": "22"}) == ("node:22-bookworm-slim",)
    assert dockerfile.base_images(text, {"BASE_IMAGE": "aegis-local/node:24"}) == (
        "aegis-local/node:24",
    )
    staged = "ARG A=x:1\nFROM $A AS one\nFROM one\nFROM --platform=$BUILDPLATFORM \\\n  y:2\n"
    assert dockerfile.base_images(staged + "FROM scratch\n", {}) == ("x:1", "y:2")


@QUICK
@given(st.text(max_size=200), st.dictionaries(st.text(max_size=6), st.text(max_size=6)))
def test_any_dockerfile_text_gives_names_never_a_traceback(
    text: str, arguments: dict[str, str]
) -> None:
    found = dockerfile.base_images(text, arguments)
    assert all(isinstance(name, str) and name for name in found)
    assert len(set(found)) == len(found)


def test_keygen_writes_the_private_half_0600_outside_the_repository(tmp_path: Path) -> None:
    base = load_config(REPOSITORY / "pyproject.toml")
    config = replace(base, root=tmp_path / "repo", trust=replace(base.trust, keys=()))
    config.root.mkdir()
    console = RecordingConsole(Masker())
    private = tmp_path / "home" / "signing.pem"
    with Runner(console, console.masker) as runner:
        made = keygen.keygen(runner, config, private_key=str(private))
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    text = private.read_text()
    assert "PRIVATE KEY" in text and text not in console.text
    assert made.public_key == tmp_path / "repo" / "keys" / "aegis-release.pub"
    assert made.public_key.read_text() == made.public_pem
    assert signing.public_half(text, "test") == made.public_pem
    with Runner(console, console.masker) as runner:
        with pytest.raises(InputError, match="exists: pass --force"):
            keygen.keygen(runner, config, private_key=str(private))
        with pytest.raises(InputError, match="inside the repository, where it could be committed"):
            keygen.keygen(runner, config, private_key=str(config.root / "k.pem"), force=True)
        with pytest.raises(InputError, match="--kind 'rsa'"):
            keygen.keygen(runner, config, private_key=str(private), kind="rsa", force=True)
    assert not (config.root / "k.pem").exists()
