import pytest

from ivr.flow.templates import TemplateError, render, safe_filename, template_names


def test_substitutes_known_names_and_blanks_unknown():
    assert render("Hi ${name}, acct ${acct}!", {"name": "Ann"}) == "Hi Ann, acct !"


def test_strict_mode_names_the_missing_variable():
    with pytest.raises(TemplateError, match=r"\$\{acct\}"):
        render("${acct}", {}, strict=True)


def test_values_are_data_not_templates():
    # A caller ID that looks like a placeholder is inserted literally and never expanded again.
    assert render("${caller_id}", {"caller_id": "${secret}", "secret": "x"}) == "${secret}"


def test_no_expressions_or_attribute_access():
    for bad in ("${a.b}", "${a[0]}", "${__import__('os')}", "${a|upper}", "${}"):
        with pytest.raises(TemplateError):
            render(bad, {"a": "v"})


def test_dollar_escapes_and_lone_dollar():
    assert render("$$5 and $5 ${x}", {"x": "1"}) == "$5 and $5 1"


def test_encode_applies_to_values_only():
    assert render("/c?n=${n}", {"n": "a b&c"}, encode=lambda v: v.replace(" ", "+")) == "/c?n=a+b&c"


def test_template_names():
    assert template_names("${a}-${b}$${c}") == {"a", "b"}


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("main-1795909322.39", "main-1795909322.39"),
        ("../../etc/passwd", "____etc_passwd"),
        ("a/b\\c", "a_b_c"),
        ("x\r\ny\x00", "x__y_"),
        ("...", "_"),
        ("-rf", "rf"),
        ("", "unnamed"),
    ],
)
def test_safe_filename(raw, expected):
    out = safe_filename(raw)
    assert out == expected
    assert "/" not in out and ".." not in out and not out.startswith(".")
