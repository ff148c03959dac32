import pytest

from madoguchi.listening.actions import forget_compiled_rules


@pytest.fixture(autouse=True)
def _fresh_compiled_rules():
    """Each test's rules vanish with its transaction: never let a compiled automaton outlive them."""
    forget_compiled_rules()
    yield
    forget_compiled_rules()


@pytest.fixture
def rules(cast):
    """Acme listens for its product names and its own support account."""
    from madoguchi.listening.actions import do_import_rules

    return do_import_rules(
        cast.ws,
        """
rules:
  - name: own account
    accounts: ["@acme_support"]
  - name: phones
    any_of: [アイフォン, iphone, "au"]
    none_of: [求人]
  - name: fiber
    all_of: [acme, fiber]
    languages: [en]
""",
    )
