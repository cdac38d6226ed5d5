"""Which CA bundle a build trusts: the order, the checks, and the line a refused certificate
gets. A real PEM bundle (certifi's) stands for a proxy's CA."""

from __future__ import annotations

from pathlib import Path

import certifi
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aegis_delivery.errors import ExitCode, InputError
from aegis_delivery.release.trust import (
    SYSTEM_STORE,
    CaBundle,
    certificate_failure,
    check_bundle,
    resolve_ca_bundle,
    system_candidates,
)

PEM = Path(certifi.where())
VARIABLE = "AEGIS_CA_BUNDLE"


def copy_of_pem(directory: Path, name: str) -> Path:
    target = directory / name
    target.write_bytes(PEM.read_bytes())
    return target


def test_the_first_bundle_set_wins_in_the_documented_order(tmp_path: Path) -> None:
    flag, variable, ssl_file, system = (
        copy_of_pem(tmp_path, n) for n in ("flag.pem", "var.pem", "ssl.pem", "system.pem")
    )
    every = {VARIABLE: str(variable), "SSL_CERT_FILE": str(ssl_file)}
    candidates = lambda: (str(tmp_path / "absent.pem"), str(system))  # noqa: E731

    def chosen(explicit: str | None, environ: dict[str, str]) -> CaBundle | None:
        return resolve_ca_bundle(explicit, environ, VARIABLE, system=candidates)

    assert chosen(str(flag), every) == CaBundle(flag, "--ca-bundle")
    assert chosen(None, every) == CaBundle(variable, VARIABLE)
    assert chosen(None, {"SSL_CERT_FILE": str(ssl_file)}) == CaBundle(ssl_file, "SSL_CERT_FILE")
    assert chosen(None, {VARIABLE: "", "SSL_CERT_FILE": ""}) == CaBundle(
        system, f"{SYSTEM_STORE}, {system}"
    )


def test_no_bundle_anywhere_means_none() -> None:
    assert resolve_ca_bundle(None, {}, VARIABLE, system=lambda: ("/no/such/bundle.pem",)) is None


def test_the_system_store_ignores_ssl_cert_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ssl's default ``cafile`` follows SSL_CERT_FILE; the system store must not, since that
    variable has its own place in the order (and its own name in messages)."""
    monkeypatch.setenv("SSL_CERT_FILE", str(copy_of_pem(tmp_path, "elsewhere.pem")))
    candidates = system_candidates()
    assert str(tmp_path / "elsewhere.pem") not in candidates
    assert "/etc/ssl/certs/ca-certificates.crt" in candidates


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "no such file"),
        (b"", "the file is empty"),
        (b"   \n", "the file is empty"),
        (b"just some text\n", "holds no PEM certificate"),
        (b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n",
         "not a valid PEM bundle"),
    ],
    ids=["missing", "empty", "blank", "no-pem", "corrupt-pem"],
)  # fmt: skip
def test_an_unusable_bundle_is_one_line_naming_the_path_and_its_source(
    tmp_path: Path, content: bytes | None, problem: str
) -> None:
    bundle = tmp_path / "proxy-ca.pem"
    if content is not None:
        bundle.write_bytes(content)
    with pytest.raises(InputError) as raised:
        resolve_ca_bundle(None, {VARIABLE: str(bundle)}, VARIABLE)
    message = raised.value.message
    assert message.startswith(f"CA bundle {bundle} (from {VARIABLE}): ")
    assert problem in message and "\n" not in message
    assert raised.value.exit_code == ExitCode.BAD_INPUT


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"\(from --ca-bundle\): is a directory"):
        resolve_ca_bundle(str(tmp_path), {}, VARIABLE)


@settings(deadline=None)  # a file per example: the disk, not the parser, sets the pace
@given(st.binary(max_size=300))
def test_any_bytes_are_a_bundle_or_an_input_error(content: bytes) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        bundle = Path(directory) / "ca.pem"
        bundle.write_bytes(content)
        try:
            assert check_bundle(bundle, "test").path == bundle
        except InputError as error:
            assert str(bundle) in error.message and "\n" not in error.message


PIP_REFUSED = (
    "#9 3.1 WARNING: Retrying (Retry(total=4...)) after connection broken by "
    "'SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate "
    "verify failed: unable to get local issuer certificate (_ssl.c:1006)'))': /simple/fastapi/"
)
NPM_REFUSED = "#8 12.0 npm error code SELF_SIGNED_CERT_IN_CHAIN\n#8 12.0 npm error errno ..."


@pytest.mark.parametrize("log", [PIP_REFUSED, NPM_REFUSED], ids=["pip", "npm"])
def test_a_refused_certificate_is_named_with_the_flag_that_fixes_it(log: str) -> None:
    bundle = CaBundle(PEM, f"{SYSTEM_STORE}, {PEM}")
    line = certificate_failure(log, bundle)
    assert line is not None and "\n" not in line
    assert "TLS certificate verification failed" in line and "--ca-bundle" in line
    assert str(PEM) in line
    assert "the build had no CA bundle" in (certificate_failure(log, None) or "")


@given(st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=400))
def test_any_build_log_gives_no_line_or_one(log: str) -> None:
    line = certificate_failure(log, None)
    assert line is None or ("\n" not in line and "--ca-bundle" in line)


def test_an_ordinary_build_failure_is_not_called_a_certificate_problem() -> None:
    log = "#9 ERROR: process did not complete successfully: exit code: 1\nNo module named x"
    assert certificate_failure(log, None) is None
