"""Lazy package names (PEP 562): loaded on first use, and never shadowed by a submodule of the same name."""

import importlib
import sys
import textwrap


def test_a_public_name_that_is_also_a_submodule_keeps_meaning_the_name(tmp_path, monkeypatch):
    package = tmp_path / "lazypkg"
    package.mkdir()
    (package / "__init__.py").write_text(textwrap.dedent('''
        from tfrs_irns._lazy import lazy_names
        __getattr__, __dir__, __all__ = lazy_names(__name__, "recommend: recommend other")
    '''))
    (package / "recommend.py").write_text("def recommend():\n    return 'called'\n\nother = 3\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        pkg = importlib.import_module("lazypkg")
        assert "recommend" not in vars(pkg)  # nothing loaded yet
        importlib.import_module("lazypkg.recommend")  # what any other import of the module does
        from lazypkg import other, recommend

        assert recommend() == "called" and other == 3
        assert sorted(pkg.__all__) == ["other", "recommend"]
        assert sys.modules["lazypkg.recommend"].recommend is recommend
    finally:
        for name in [n for n in sys.modules if n == "lazypkg" or n.startswith("lazypkg.")]:
            del sys.modules[name]
