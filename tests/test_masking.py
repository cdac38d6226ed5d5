"""Secrets never survive masking, whatever form they reach the masker in."""

from __future__ import annotations

from aegis_delivery.masking import MASK, Masker


def test_known_secret_environment_variables_are_masked() -> None:
    masker = Masker.from_environment(
        {"GITHUB_TOKEN": "ghp_secretvalue", "HOME": "/root", "REGISTRY_PASSWORD": "hunter22"}
    )
    text = masker.mask("login ghp_secretvalue with hunter22 from /root")
    assert text == f"login {MASK} with {MASK} from /root"


def test_multi_line_secrets_are_masked_line_by_line() -> None:
    masker = Masker()
    masker.add("apiVersion: v1\nclient-key-data: QUJDREVGRw==\n")
    assert "QUJDREVGRw==" not in masker.mask("error near client-key-data: QUJDREVGRw==")


def test_the_longest_secret_wins() -> None:
    masker = Masker(["abcd", "abcdefgh"])
    assert masker.mask("abcdefgh") == MASK
    assert "abcd" in masker


def test_too_short_values_are_not_treated_as_secrets() -> None:
    masker = Masker(["", "ab"])
    assert masker.mask("a b ab") == "a b ab"
